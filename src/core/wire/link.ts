/**
 * Link-layer types (the LINKTYPE_* values of pcap/pcapng headers) that the decoders accept.
 * The decoder itself lives in decode.ts.
 */
export const LINKTYPE_NULL = 0; // BSD loopback
export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101; // raw IPv4/IPv6
export const LINKTYPE_LOOP = 108; // OpenBSD loopback: the NULL header with the family in network byte order
export const LINKTYPE_LINUX_SLL = 113; // Linux cooked capture v1
export const LINKTYPE_IPV4 = 228;
export const LINKTYPE_IPV6 = 229;
export const LINKTYPE_LINUX_SLL2 = 276; // Linux cooked capture v2
/** DLT_RAW as some systems write it in pcap headers (OpenBSD value 14, also 12). */
export const LINKTYPE_RAW_ALT1 = 12;
export const LINKTYPE_RAW_ALT2 = 14;
