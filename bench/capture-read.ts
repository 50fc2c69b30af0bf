/**
 * Capture-file read benchmark: synthesizes a ~500 MB classic pcap in /tmp with PcapWriter
 * (100k TCP sessions of Ethernet/IPv4/TCP frames: SYN, request, ACKs, response, FIN), reads
 * it back with CaptureFileReader, prints write and read throughput (MB/s, records/s) and
 * the peak RSS, then deletes the file. No assertions.
 * Usage: node dist/bench/capture-read.js [MB=500] [chunkKiB=4096]
 * The file was just written, so it is read mostly from the page cache: this measures the
 * reader, not the disk.
 */
import { rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PcapWriter } from '../src/io/capture-file/writer';
import { CaptureFileReader } from '../src/io/capture-file/reader';

const targetMB = Number(process.argv[2] ?? 500);
const chunkKiB = Number(process.argv[3] ?? 4096);
const path = join(tmpdir(), `tcr-bench-${process.pid}.pcap`);

/** Fills an Ethernet + IPv4 + TCP frame (checksums left zero: the reader does not care). */
function frame(buf: Buffer, cli: number, port: number, toServer: boolean, flags: number, payload: number): number {
  buf.fill(0, 0, 54);
  buf.writeUInt16BE(0x0800, 12);
  buf[14] = 0x45;
  buf.writeUInt16BE(40 + payload, 16);
  buf[22] = 64;
  buf[23] = 6;
  const srv = 0xc6120002; // 198.18.0.2
  buf.writeUInt32BE(toServer ? cli : srv, 26);
  buf.writeUInt32BE(toServer ? srv : cli, 30);
  buf.writeUInt16BE(toServer ? port : 80, 34);
  buf.writeUInt16BE(toServer ? 80 : port, 36);
  buf[46] = 0x50;
  buf[47] = flags;
  buf.writeUInt16BE(65535, 48);
  return 54 + payload;
}

function synthesize(): { records: number; bytes: number; ms: number } {
  const t0 = performance.now();
  const w = PcapWriter.create(path, 1, { bufferBytes: 4 * 1024 * 1024 });
  const buf = Buffer.alloc(2000, 0x41);
  const target = targetMB * 1024 * 1024;
  let ts = 1.7e12;
  let bytes = 24;
  let s = 0;
  const put = (len: number): void => {
    w.write(ts, buf, 0, len);
    bytes += 16 + len;
    ts += 0.013;
  };
  while (bytes < target) {
    const cli = 0xc6130000 + (s % 60000); // 198.19.x.x
    const port = 1024 + (s % 60000);
    put(frame(buf, cli, port, true, 0x02, 0));
    put(frame(buf, cli, port, false, 0x12, 0));
    put(frame(buf, cli, port, true, 0x10, 0));
    put(frame(buf, cli, port, true, 0x18, 300 + (s % 700)));
    put(frame(buf, cli, port, false, 0x10, 0));
    put(frame(buf, cli, port, false, 0x18, 1400));
    put(frame(buf, cli, port, false, 0x18, 200 + (s % 1000)));
    put(frame(buf, cli, port, true, 0x11, 0));
    put(frame(buf, cli, port, false, 0x11, 0));
    put(frame(buf, cli, port, true, 0x10, 0));
    s++;
  }
  w.close();
  return { records: w.records, bytes, ms: performance.now() - t0 };
}

async function main(): Promise<void> {
  try {
    const wr = synthesize();
    const size = statSync(path).size;
    console.log(
      `write: ${(size / 1e6).toFixed(0)} MB, ${wr.records} records in ${(wr.ms / 1000).toFixed(2)} s: ` +
        `${(size / 1e6 / (wr.ms / 1000)).toFixed(0)} MB/s, ${(wr.records / (wr.ms / 1000) / 1e6).toFixed(2)} M records/s`,
    );
    const t0 = performance.now();
    const r = await CaptureFileReader.open(path, { chunkBytes: chunkKiB * 1024 });
    let sum = 0;
    let n = 0;
    const rx = {
      packet(_lt: number, b: Buffer, off: number, cap: number): void {
        n++;
        sum += cap + (b[off + 47] ?? 0);
      },
    };
    while (await r.readBatch(rx, 10000)) {
      /* read on */
    }
    await r.close();
    const ms = performance.now() - t0;
    console.log(
      `read:  ${n} records, ${(r.bytesRead / 1e6).toFixed(0)} MB in ${(ms / 1000).toFixed(2)} s: ` +
        `${(r.bytesRead / 1e6 / (ms / 1000)).toFixed(0)} MB/s, ${(n / (ms / 1000) / 1e6).toFixed(2)} M records/s ` +
        `(chunk ${chunkKiB} KiB, fatal ${r.fatal ? r.fatal.code : 'none'}, checksum ${sum})`,
    );
    console.log(`peak RSS: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
  } finally {
    rmSync(path, { force: true });
  }
}

void main();
