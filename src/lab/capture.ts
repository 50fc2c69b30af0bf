/**
 * tcpdump captures inside a lab namespace, written to a pcap file.
 */
import type { HostName } from './names';
import type { LabProcess, SpawnOptions } from './process';

/** Options of Lab.capture. */
export interface CaptureOptions {
  /** Interface inside the host's namespace. Default: the host's main interface. */
  dev?: string;
  /** BPF filter expression, e.g. 'tcp port 80'. Required (use '' for everything). */
  filter: string;
  /** pcap file to write. Required. */
  file: string;
  /** Bytes captured per packet (tcpdump -s). Default 262144 (whole packets). */
  snaplen?: number;
  /** Start time limit, ms. Default 10000. */
  timeoutMs?: number;
}

/** A running capture. */
export interface LabCapture {
  /** The pcap file. */
  file: string;
  /** The tcpdump process. */
  proc: LabProcess;
  /** Ends tcpdump with SIGINT so the file is complete; resolves the packet count tcpdump reports (null if it printed none). */
  stop(): Promise<{ packets: number | null; droppedByKernel: number | null }>;
}

/** What capture() needs from the lab. */
export interface CaptureLab {
  /** Spawns a tracked process in a host's namespace. */
  spawn(host: HostName | 'switch', argv: string[], opts?: SpawnOptions): LabProcess;
}

/** Starts `tcpdump -i DEV -B 65536 -w FILE -U -s SNAP FILTER` (a 64 MiB kernel buffer: the default drops packets at ~30k requests/s) and waits until it is listening. */
export async function startCapture(
  lab: CaptureLab,
  host: HostName | 'switch',
  dev: string,
  o: CaptureOptions,
): Promise<LabCapture> {
  const argv = [
    'tcpdump',
    '-n',
    '-Z',
    'root',
    '--immediate-mode',
    '-B',
    '65536',
    '-i',
    dev,
    '-U',
    '-s',
    String(o.snaplen ?? 262144),
    '-w',
    o.file,
  ];
  if (o.filter.trim() !== '') argv.push(o.filter);
  const proc = lab.spawn(host, argv, { label: `tcpdump-${host}-${dev}`, stopSignal: 'SIGINT', graceMs: 3000 });
  await proc.waitFor(/listening on/, o.timeoutMs ?? 10_000);
  return {
    file: o.file,
    proc,
    async stop() {
      await proc.stop('SIGINT');
      const n = /(\d+) packets? captured/.exec(proc.stderr);
      const d = /(\d+) packets? dropped by kernel/.exec(proc.stderr);
      return { packets: n ? Number(n[1]) : null, droppedByKernel: d ? Number(d[1]) : null };
    },
  };
}
