/**
 * zlib's Huffman-only deflate (strategy Z_HUFFMAN_ONLY, memLevel 8, any level but 0), written
 * again in JavaScript so that it can run on worker threads and costs less CPU than the
 * binding: the same blocks, the same trees, the same choice between stored, fixed and dynamic
 * codes, so the output is byte for byte what zlib gives (test/unit/huffman-deflate.test.ts
 * compares the two on many inputs). It follows the algorithm of zlib's deflate_huff and
 * trees.c (RFC 1951 leaves tree building and block choice to the encoder, so matching zlib's
 * bytes means making the same choices), not its code.
 *
 * Everything lives inside one factory that uses only JavaScript built-ins, so that its source
 * text can start a worker thread (see deflate-workers.ts) in the single-file bundle.
 */

// The project's type libraries leave out WebAssembly; the little used here, declared.
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
};

export interface HuffmanDeflater {
  /**
   * Raw deflate of `input` as zlib writes it for a fresh stream given all of `input` and then
   * Z_SYNC_FLUSH (`final` false: ends with an empty stored block, byte-aligned) or Z_FINISH
   * (`final` true: the last block has BFINAL set).
   */
  deflate(input: Uint8Array, final: boolean): Uint8Array;
}

export function createHuffmanDeflater(): HuffmanDeflater {
  /** Literals per block: zlib's lit_bufsize - 1, with lit_bufsize = 1 << (memLevel + 6). */
  const BLOCK_SYMBOLS = (1 << 14) - 1;
  const L_CODES = 286;
  const D_CODES = 30;
  const BL_CODES = 19;
  const END_BLOCK = 256;
  const MAX_BITS = 15;
  const MAX_BL_BITS = 7;
  const REP_3_6 = 16;
  const REPZ_3_10 = 17;
  const REPZ_11_138 = 18;
  const HEAP_SIZE = 2 * L_CODES + 1;
  const BL_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];
  const EXTRA_BL_BITS = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 3, 7];

  /** One tree being built: frequencies, parents, lengths and codes of leaves and inner nodes. */
  interface Tree {
    elements: number;
    maxLength: number;
    freq: Uint32Array;
    dad: Uint16Array;
    /** One slot more than the nodes: the guard scanTree writes after the last code. */
    len: Uint16Array;
    code: Uint16Array;
    /** Lengths of the fixed code, when there is one (for the cost of using it). */
    staticLen: Uint8Array | undefined;
    extraBits: number[] | undefined;
    maxCode: number;
  }

  const newTree = (elements: number, maxLength: number, staticLen?: Uint8Array, extraBits?: number[]): Tree => ({
    elements,
    maxLength,
    freq: new Uint32Array(2 * elements + 1),
    dad: new Uint16Array(2 * elements + 1),
    len: new Uint16Array(2 * elements + 2),
    code: new Uint16Array(2 * elements + 1),
    staticLen,
    extraBits,
    maxCode: 0,
  });

  const reverseBits = (code: number, length: number): number => {
    let result = 0;
    for (let i = 0; i < length; i++) {
      result = (result << 1) | (code & 1);
      code >>>= 1;
    }
    return result;
  };

  const blCount = new Uint16Array(MAX_BITS + 1);
  const nextCode = new Uint16Array(MAX_BITS + 1);

  /** Canonical codes from the lengths (RFC 1951 3.2.2), bit-reversed for LSB-first output. */
  const assignCodes = (len: Uint16Array | Uint8Array, code: Uint16Array, maxCode: number, counts: Uint16Array): void => {
    let next = 0;
    for (let bits = 1; bits <= MAX_BITS; bits++) {
      next = (next + counts[bits - 1]!) << 1;
      nextCode[bits] = next;
    }
    for (let n = 0; n <= maxCode; n++) {
      const length = len[n]!;
      if (length !== 0) code[n] = reverseBits(nextCode[length]!++, length);
    }
  };

  // The fixed literal/length code: 8 bits for 0-143, 9 for 144-255, 7 for 256-279, 8 for 280-287.
  const staticLiteralLen = new Uint8Array(288);
  const staticLiteralCode = new Uint16Array(288);
  staticLiteralLen.fill(8, 0, 144).fill(9, 144, 256).fill(7, 256, 280).fill(8, 280, 288);
  const staticCounts = new Uint16Array(MAX_BITS + 1);
  for (const length of staticLiteralLen) staticCounts[length]!++;
  assignCodes(staticLiteralLen, staticLiteralCode, 287, staticCounts);
  const staticDistanceLen = new Uint8Array(D_CODES).fill(5);

  const literals = newTree(L_CODES, MAX_BITS, staticLiteralLen);
  const distances = newTree(D_CODES, MAX_BITS, staticDistanceLen);
  const bitLengths = newTree(BL_CODES, MAX_BL_BITS, undefined, EXTRA_BL_BITS);
  const heap = new Int32Array(HEAP_SIZE);
  const depth = new Uint8Array(HEAP_SIZE);
  let heapLength = 0;
  let heapMax = 0;
  /** Bits of the block with the dynamic trees (optLen) and with the fixed ones (staticLen). */
  let optLen = 0;
  let staticLen = 0;

  const smaller = (freq: Uint32Array, n: number, m: number): boolean =>
    freq[n]! < freq[m]! || (freq[n] === freq[m] && depth[n]! <= depth[m]!);

  const siftDown = (freq: Uint32Array, k: number): void => {
    const v = heap[k]!;
    let j = k << 1;
    while (j <= heapLength) {
      if (j < heapLength && smaller(freq, heap[j + 1]!, heap[j]!)) j++;
      if (smaller(freq, v, heap[j]!)) break;
      heap[k] = heap[j]!;
      k = j;
      j <<= 1;
    }
    heap[k] = v;
  };

  /** Code lengths limited to maxLength, adjusting the cost as zlib's gen_bitlen does. */
  const assignLengths = (tree: Tree): void => {
    const { freq, dad, len, maxLength, maxCode } = tree;
    blCount.fill(0);
    len[heap[heapMax]!] = 0;
    let overflow = 0;
    let h = heapMax + 1;
    for (; h < HEAP_SIZE; h++) {
      const n = heap[h]!;
      let bits = len[dad[n]!]! + 1;
      if (bits > maxLength) {
        bits = maxLength;
        overflow++;
      }
      len[n] = bits;
      if (n > maxCode) continue;
      blCount[bits]!++;
      const extra = tree.extraBits ? tree.extraBits[n]! : 0;
      const f = freq[n]!;
      optLen += f * (bits + extra);
      if (tree.staticLen) staticLen += f * (tree.staticLen[n]! + extra);
    }
    if (overflow === 0) return;
    do {
      let bits = maxLength - 1;
      while (blCount[bits] === 0) bits--;
      blCount[bits]!--;
      blCount[bits + 1]! += 2;
      blCount[maxLength]!--;
      overflow -= 2;
    } while (overflow > 0);
    for (let bits = maxLength; bits !== 0; bits--) {
      let n = blCount[bits]!;
      while (n !== 0) {
        const m = heap[--h]!;
        if (m > maxCode) continue;
        if (len[m] !== bits) {
          optLen += (bits - len[m]!) * freq[m]!;
          len[m] = bits;
        }
        n--;
      }
    }
  };

  /** A Huffman tree for the frequencies, with zlib's tie-breaking (zlib's build_tree). */
  const buildTree = (tree: Tree): void => {
    const { freq, dad, len, elements } = tree;
    heapLength = 0;
    heapMax = HEAP_SIZE;
    let maxCode = -1;
    for (let n = 0; n < elements; n++) {
      if (freq[n] !== 0) {
        heap[++heapLength] = maxCode = n;
        depth[n] = 0;
      } else {
        len[n] = 0;
      }
    }
    // At least two codes, even with fewer symbols, so that every code has a bit.
    while (heapLength < 2) {
      const node = (heap[++heapLength] = maxCode < 2 ? ++maxCode : 0);
      freq[node] = 1;
      depth[node] = 0;
      optLen--;
      if (tree.staticLen) staticLen -= tree.staticLen[node]!;
    }
    tree.maxCode = maxCode;
    for (let n = heapLength >> 1; n >= 1; n--) siftDown(freq, n);
    let node = elements;
    do {
      const n = heap[1]!;
      heap[1] = heap[heapLength--]!;
      siftDown(freq, 1);
      const m = heap[1]!;
      heap[--heapMax] = n;
      heap[--heapMax] = m;
      freq[node] = freq[n]! + freq[m]!;
      depth[node] = (depth[n]! >= depth[m]! ? depth[n]! : depth[m]!) + 1;
      dad[n] = dad[m] = node;
      heap[1] = node++;
      siftDown(freq, 1);
    } while (heapLength >= 2);
    heap[--heapMax] = heap[1]!;
    assignLengths(tree);
    assignCodes(len, tree.code, maxCode, blCount);
  };

  /** Counts the code-length codes that will describe `tree` (zlib's scan_tree). */
  const scanTree = (tree: Tree): void => {
    const { len, maxCode } = tree;
    const blFreq = bitLengths.freq;
    let prevLen = -1;
    let nextLen = len[0]!;
    let count = 0;
    let maxCount = nextLen === 0 ? 138 : 7;
    let minCount = nextLen === 0 ? 3 : 4;
    len[maxCode + 1] = 0xffff;
    for (let n = 0; n <= maxCode; n++) {
      const curLen = nextLen;
      nextLen = len[n + 1]!;
      if (++count < maxCount && curLen === nextLen) continue;
      if (count < minCount) blFreq[curLen]! += count;
      else if (curLen !== 0) {
        if (curLen !== prevLen) blFreq[curLen]!++;
        blFreq[REP_3_6]!++;
      } else if (count <= 10) blFreq[REPZ_3_10]!++;
      else blFreq[REPZ_11_138]!++;
      count = 0;
      prevLen = curLen;
      if (nextLen === 0) [maxCount, minCount] = [138, 3];
      else if (curLen === nextLen) [maxCount, minCount] = [6, 3];
      else [maxCount, minCount] = [7, 4];
    }
  };


  // ---- the two hot loops, in WebAssembly ------------------------------------------------------
  // Counting a block's bytes and writing their codes take nearly all the time; V8 runs these
  // loops about twice as fast as WebAssembly than as JavaScript. The module is assembled here
  // from opcodes, so there is no toolchain and no binary file. Memory layout: the bit writer's
  // state after emit() at 0, byte counts at FREQ, the code table at TABLE, then the input and
  // the output.
  const FREQ = 64;
  const TABLE = 2048;
  const INPUT = 4096;
  const kernel = ((): { count: (start: number, end: number, freq: number) => void; emit: (start: number, end: number, table: number, out: number, bits: number, bitCount: number) => number; memory: WasmMemory } => {
    const uleb = (n: number): number[] => {
      const bytes: number[] = [];
      do {
        let byte = n & 0x7f;
        n >>>= 7;
        if (n !== 0) byte |= 0x80;
        bytes.push(byte);
      } while (n !== 0);
      return bytes;
    };
    const sleb = (n: number): number[] => {
      const bytes: number[] = [];
      for (;;) {
        const byte = n & 0x7f;
        n >>= 7;
        if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) return [...bytes, byte];
        bytes.push(byte | 0x80);
      }
    };
    const I32 = 0x7f;
    const I64 = 0x7e;
    const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
    const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
    const name = (text: string): number[] => vec([...text].map((c) => [c.charCodeAt(0)]));
    const get = (i: number) => [0x20, i];
    const set = (i: number) => [0x21, i];
    const tee = (i: number) => [0x22, i];
    const i32 = (n: number) => [0x41, ...sleb(n)];
    const i64 = (n: number) => [0x42, ...sleb(n)];
    const [load8, load32, store32, store64As32, store64As16] = [[0x2d, 0, 0], [0x28, 2, 0], [0x36, 2, 0], [0x3e, 0, 0], [0x3d, 0, 0]];
    const [add, sub, and, shl, shrU, ltU, geU] = [[0x6a], [0x6b], [0x71], [0x74], [0x76], [0x49], [0x4f]];
    const [extendU, shl64, or64, shrU64] = [[0xad], [0x86], [0x84], [0x88]];
    const [block, loop, ifThen, end, brIf0] = [[0x02, 0x40], [0x03, 0x40], [0x04, 0x40], [0x0b], [0x0d, 0]];
    // count(start, end, freq): freq[memory[i]] += 1 for i in [start, end); local 3: address.
    const count = [
      ...block, ...get(0), ...get(1), ...geU, ...brIf0,
      ...loop,
      ...get(2), ...get(0), ...load8, ...i32(2), ...shl, ...add, ...tee(3),
      ...get(3), ...load32, ...i32(1), ...add, ...store32,
      ...get(0), ...i32(1), ...add, ...tee(0), ...get(1), ...ltU, ...brIf0,
      ...end, ...end,
    ];
    // emit(start, end, table, out, bits, bitCount) -> out: writes table[memory[i]] (length << 16 |
    // code) for each byte, 32 bits at a time; leaves fewer than 16 bits pending, stored at 0 and 4.
    // Locals 6: table entry, 7: the bit buffer (64 bits).
    const emit = [
      ...get(4), ...extendU, ...set(7),
      ...block, ...get(0), ...get(1), ...geU, ...brIf0,
      ...loop,
      ...get(2), ...get(0), ...load8, ...i32(2), ...shl, ...add, ...load32, ...set(6),
      ...get(7), ...get(6), ...i32(0xffff), ...and, ...extendU, ...get(5), ...extendU, ...shl64, ...or64, ...set(7),
      ...get(5), ...get(6), ...i32(16), ...shrU, ...add, ...tee(5), ...i32(32), ...geU,
      ...ifThen,
      ...get(3), ...get(7), ...store64As32, ...get(3), ...i32(4), ...add, ...set(3),
      ...get(7), ...i64(32), ...shrU64, ...set(7), ...get(5), ...i32(32), ...sub, ...set(5),
      ...end,
      ...get(0), ...i32(1), ...add, ...tee(0), ...get(1), ...ltU, ...brIf0,
      ...end, ...end,
      ...get(5), ...i32(16), ...geU,
      ...ifThen,
      ...get(3), ...get(7), ...store64As16, ...get(3), ...i32(2), ...add, ...set(3),
      ...get(7), ...i64(16), ...shrU64, ...set(7), ...get(5), ...i32(16), ...sub, ...set(5),
      ...end,
      ...i32(0), ...get(7), ...store64As32, ...i32(4), ...get(5), ...store32,
      ...get(3),
    ];
    const body = (locals: number[][], code: number[]): number[] => {
      const bytes = [...vec(locals), ...code, ...end];
      return [...uleb(bytes.length), ...bytes];
    };
    const module = new WebAssembly.Module(Uint8Array.from([
      0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
      ...section(1, vec([[0x60, ...vec([[I32], [I32], [I32]]), 0], [0x60, ...vec([[I32], [I32], [I32], [I32], [I32], [I32]]), 1, I32]])),
      ...section(3, vec([[0], [1]])),
      ...section(5, vec([[0x00, ...uleb(1)]])),
      ...section(7, vec([[...name('count'), 0, 0], [...name('emit'), 0, 1], [...name('memory'), 2, 0]])),
      ...section(10, vec([body([[1, I32]], count), body([[1, I32], [1, I64]], emit)])),
    ]));
    return new WebAssembly.Instance(module).exports as never;
  })();
  let memory = new Uint8Array(kernel.memory.buffer);
  let words = new Int32Array(kernel.memory.buffer);

  /** Makes the module's memory hold `bytes`. */
  const reserve = (bytes: number): void => {
    const missing = bytes - kernel.memory.buffer.byteLength;
    if (missing <= 0) return;
    kernel.memory.grow(Math.ceil(missing / 65536));
    memory = new Uint8Array(kernel.memory.buffer);
    words = new Int32Array(kernel.memory.buffer);
  };

  // ---- output: into the module's memory, after the input ---------------------------------
  let pos = 0;
  let bitBuffer = 0;
  let bitCount = 0;

  const sendBits = (value: number, length: number): void => {
    bitBuffer |= value << bitCount;
    bitCount += length;
    if (bitCount >= 16) {
      memory[pos++] = bitBuffer & 0xff;
      memory[pos++] = (bitBuffer >>> 8) & 0xff;
      bitBuffer >>>= 16;
      bitCount -= 16;
    }
  };

  const alignToByte = (): void => {
    if (bitCount > 8) {
      memory[pos++] = bitBuffer & 0xff;
      memory[pos++] = (bitBuffer >>> 8) & 0xff;
    } else if (bitCount > 0) {
      memory[pos++] = bitBuffer & 0xff;
    }
    bitBuffer = 0;
    bitCount = 0;
  };

  /** memory[start, end) as a stored block (RFC 1951 3.2.4). */
  const storedBlock = (start: number, end: number, last: number): void => {
    sendBits(last, 3); // BTYPE 00
    alignToByte();
    const length = end - start;
    memory[pos++] = length & 0xff;
    memory[pos++] = length >>> 8;
    memory[pos++] = ~length & 0xff;
    memory[pos++] = (~length >>> 8) & 0xff;
    memory.copyWithin(pos, start, end);
    pos += length;
  };

  /** Sends `tree`'s code lengths with the code-length code (zlib's send_tree). */
  const sendTree = (tree: Tree, maxCode: number): void => {
    const { len } = tree;
    const blLen = bitLengths.len;
    const blCode = bitLengths.code;
    let prevLen = -1;
    let nextLen = len[0]!;
    let count = 0;
    let maxCount = nextLen === 0 ? 138 : 7;
    let minCount = nextLen === 0 ? 3 : 4;
    for (let n = 0; n <= maxCode; n++) {
      const curLen = nextLen;
      nextLen = len[n + 1]!;
      if (++count < maxCount && curLen === nextLen) continue;
      if (count < minCount) {
        do sendBits(blCode[curLen]!, blLen[curLen]!);
        while (--count !== 0);
      } else if (curLen !== 0) {
        if (curLen !== prevLen) {
          sendBits(blCode[curLen]!, blLen[curLen]!);
          count--;
        }
        sendBits(blCode[REP_3_6]!, blLen[REP_3_6]!);
        sendBits(count - 3, 2);
      } else if (count <= 10) {
        sendBits(blCode[REPZ_3_10]!, blLen[REPZ_3_10]!);
        sendBits(count - 3, 3);
      } else {
        sendBits(blCode[REPZ_11_138]!, blLen[REPZ_11_138]!);
        sendBits(count - 11, 7);
      }
      count = 0;
      prevLen = curLen;
      if (nextLen === 0) [maxCount, minCount] = [138, 3];
      else if (curLen === nextLen) [maxCount, minCount] = [6, 3];
      else [maxCount, minCount] = [7, 4];
    }
  };

  /** memory[start, end) as literals with these code lengths and codes, then END_BLOCK. */
  const sendLiterals = (start: number, end: number, len: ArrayLike<number>, code: ArrayLike<number>): void => {
    for (let n = 0; n <= END_BLOCK; n++) words[TABLE / 4 + n] = (len[n]! << 16) | code[n]!;
    pos = kernel.emit(start, end, TABLE, pos, bitBuffer, bitCount);
    bitBuffer = words[0]!;
    bitCount = words[1]!;
    sendBits(code[END_BLOCK]!, len[END_BLOCK]!);
  };

  /** One block of literals, memory[start, end), sent as zlib's _tr_flush_block chooses. */
  const flushBlock = (start: number, end: number, last: number): void => {
    words.fill(0, FREQ / 4, FREQ / 4 + 256);
    kernel.count(start, end, FREQ);
    const lFreq = literals.freq;
    for (let n = 0; n < 256; n++) lFreq[n] = words[FREQ / 4 + n]!;
    lFreq.fill(0, 256, L_CODES);
    lFreq[END_BLOCK] = 1;
    distances.freq.fill(0, 0, D_CODES);
    bitLengths.freq.fill(0, 0, BL_CODES);
    optLen = 0;
    staticLen = 0;
    buildTree(literals);
    buildTree(distances);
    scanTree(literals);
    scanTree(distances);
    buildTree(bitLengths);
    let maxBlIndex = BL_CODES - 1;
    for (; maxBlIndex >= 3; maxBlIndex--) if (bitLengths.len[BL_ORDER[maxBlIndex]!] !== 0) break;
    optLen += 3 * (maxBlIndex + 1) + 5 + 5 + 4;
    let optBytes = (optLen + 3 + 7) >>> 3;
    const staticBytes = (staticLen + 3 + 7) >>> 3;
    if (staticBytes <= optBytes) optBytes = staticBytes;
    if (end - start + 4 <= optBytes) {
      storedBlock(start, end, last);
    } else if (staticBytes === optBytes) {
      sendBits((1 << 1) + last, 3);
      sendLiterals(start, end, staticLiteralLen, staticLiteralCode);
    } else {
      sendBits((2 << 1) + last, 3);
      const lCodes = literals.maxCode + 1;
      const dCodes = distances.maxCode + 1;
      sendBits(lCodes - 257, 5);
      sendBits(dCodes - 1, 5);
      sendBits(maxBlIndex + 1 - 4, 4);
      for (let rank = 0; rank <= maxBlIndex; rank++) sendBits(bitLengths.len[BL_ORDER[rank]!]!, 3);
      sendTree(literals, lCodes - 1);
      sendTree(distances, dCodes - 1);
      sendLiterals(start, end, literals.len, literals.code);
    }
    if (last) alignToByte();
  };

  return {
    deflate(input, final) {
      const blocks = Math.max(1, Math.ceil(input.length / BLOCK_SYMBOLS));
      // Deflate never makes a block longer than stored: 5 bytes of header, plus room for the flush.
      const output = INPUT + input.length;
      reserve(output + input.length + 5 * blocks + 16);
      memory.set(input, INPUT);
      pos = output;
      bitBuffer = 0;
      bitCount = 0;
      const inputEnd = INPUT + input.length;
      let start = INPUT;
      // Full blocks are flushed as they fill; what is left goes out with the flush.
      for (; inputEnd - start >= BLOCK_SYMBOLS; start += BLOCK_SYMBOLS) flushBlock(start, start + BLOCK_SYMBOLS, 0);
      if (final) {
        flushBlock(start, inputEnd, 1);
      } else {
        if (start < inputEnd) flushBlock(start, inputEnd, 0);
        storedBlock(start, start, 0); // Z_SYNC_FLUSH: an empty stored block
      }
      return memory.slice(output, pos);
    },
  };
}
