//! The structural pass of the line scanner: skipping a JSON container 64 bytes at a time, as simdjson's stage 1 does.
//!
//! A block of 16 bytes becomes bitmasks ([`Masks`]: quotes, backslashes, opening and closing brackets, bit `i` for
//! byte `i`), and four blocks one 64-bit mask of each (a step of 16 bytes near the end of the
//! line). Everything after that is plain integer code, the same on every target: the escaped bytes of backslash runs
//! (with a carry into the next step), the quotes that are not escaped, the in-string mask as their prefix XOR, and
//! the nesting depth from the brackets outside strings. Only the mask extraction differs: wasm32 with `simd128`
//! (every wasm build of this crate, .cargo/config.toml) compares 16 bytes at once; other targets use
//! [`masks_scalar`], so native tests and the fuzzer run the same block logic. (64 bytes a step rather than 16: 8-9%
//! less time for raw reading in Chromium and 10% for filtered reading in Node, bench/NOTES.md.)
//!
//! The result is the byte-at-a-time scanner's ([`skip_container_bytes`]) for every input, valid JSON or not. The one
//! place the two rules could differ is a backslash outside a string: the byte scanner ignores it there, the block
//! logic would take it as an escape. A step holding one is scanned byte by byte (no valid JSON has one).

/// Bytes per block.
pub const BLOCK: usize = 16;

/// The structural bytes of one block, bit `i` for byte `i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Masks {
    /// `"`.
    pub quote: u16,
    /// `\`.
    pub backslash: u16,
    /// `{` and `[`.
    pub open: u16,
    /// `}` and `]`.
    pub close: u16,
}

/// The reference extraction, one byte at a time (also the one of targets without wasm's `simd128`).
pub fn masks_scalar(block: &[u8; BLOCK]) -> Masks {
    let mut m = Masks { quote: 0, backslash: 0, open: 0, close: 0 };
    for (i, &b) in block.iter().enumerate() {
        let bit = 1u16 << i;
        match b {
            b'"' => m.quote |= bit,
            b'\\' => m.backslash |= bit,
            b'{' | b'[' => m.open |= bit,
            b'}' | b']' => m.close |= bit,
            _ => {}
        }
    }
    m
}

/// The block as a vector: two `i64.load`s (LLVM merges the bytes of each half; a `v128.load` needs `unsafe`, which
/// the crate forbids).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
fn vector(b: &[u8; BLOCK]) -> core::arch::wasm32::v128 {
    let lo = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    let hi = u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]);
    core::arch::wasm32::u64x2(lo, hi)
}

/// The extraction the scanner uses: wasm's `simd128` (16 compares at once) where it is enabled.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
pub fn masks(block: &[u8; BLOCK]) -> Masks {
    use core::arch::wasm32::{u8x16_bitmask, u8x16_eq, u8x16_splat, v128_or};
    let v = vector(block);
    // `[` and `]` are `{` and `}` with bit 0x20 clear; no other byte ORs to them.
    let folded = v128_or(v, u8x16_splat(0x20));
    Masks {
        quote: u8x16_bitmask(u8x16_eq(v, u8x16_splat(b'"'))),
        backslash: u8x16_bitmask(u8x16_eq(v, u8x16_splat(b'\\'))),
        open: u8x16_bitmask(u8x16_eq(folded, u8x16_splat(b'{'))),
        close: u8x16_bitmask(u8x16_eq(folded, u8x16_splat(b'}'))),
    }
}

/// The extraction the scanner uses: [`masks_scalar`] on targets without wasm's `simd128`.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[inline]
pub fn masks(block: &[u8; BLOCK]) -> Masks {
    masks_scalar(block)
}

/// Bit `i` set when byte `i` of the block is `byte`: `simd128` where it is enabled.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
pub fn eq(block: &[u8; BLOCK], byte: u8) -> u16 {
    use core::arch::wasm32::{u8x16_bitmask, u8x16_eq, u8x16_splat};
    u8x16_bitmask(u8x16_eq(vector(block), u8x16_splat(byte)))
}

/// Bit `i` set when byte `i` of the block is `byte`, one byte at a time (targets without wasm's `simd128`).
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[inline]
pub fn eq(block: &[u8; BLOCK], byte: u8) -> u16 {
    block.iter().enumerate().fold(0, |m, (i, &b)| m | (u16::from(b == byte) << i))
}

/// The top bit of each byte of the block (those outside ASCII): `simd128` where it is enabled.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
fn high(block: &[u8; BLOCK]) -> u16 {
    core::arch::wasm32::u8x16_bitmask(vector(block))
}

/// The top bit of each byte of the block, one byte at a time (targets without wasm's `simd128`).
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[inline]
fn high(block: &[u8; BLOCK]) -> u16 {
    block.iter().enumerate().fold(0, |m, (i, &b)| m | (u16::from(b >> 7) << i))
}

/// Where the first `\n` of `s` is (`s.len()` without one), and whether every byte before it is ASCII: 16 bytes at a
/// time. The line framing's search ([`crate::framing`]): a line that is all ASCII needs no UTF-8 check.
pub fn newline(s: &[u8]) -> (usize, bool) {
    let (mut at, mut seen) = (0, 0u16);
    while let Some(b) = block(s, at) {
        let (nl, high) = (eq(b, b'\n'), high(b));
        if nl != 0 {
            let k = nl.trailing_zeros();
            // The bits of the bytes before the newline (`k` is at most 15).
            return (at + k as usize, (seen | high & ((1 << k) - 1)) == 0);
        }
        seen |= high;
        at += BLOCK;
    }
    let mut ascii = seen == 0;
    while let Some(&b) = s.get(at) {
        if b == b'\n' {
            break;
        }
        ascii &= b.is_ascii();
        at += 1;
    }
    (at, ascii)
}

/// The masks of up to four consecutive blocks, bit `k` for byte `k` of the first (the scan's step: 64 bytes, or 16
/// near the end, the bits past it clear).
#[derive(Debug, Clone, Copy, Default)]
struct Wide {
    quote: u64,
    backslash: u64,
    open: u64,
    close: u64,
}

/// The masks of `N` consecutive blocks, joined (`N` is 4 or 1: the loops unroll).
#[inline(always)]
fn wide<const N: usize>(blocks: [&[u8; BLOCK]; N]) -> Wide {
    let mut w = Wide::default();
    for (k, b) in blocks.iter().enumerate() {
        let (m, at) = (masks(b), 16 * k as u32);
        w.quote |= u64::from(m.quote) << at;
        w.backslash |= u64::from(m.backslash) << at;
        w.open |= u64::from(m.open) << at;
        w.close |= u64::from(m.close) << at;
    }
    w
}

/// [`eq`] of `N` consecutive blocks, joined.
#[inline(always)]
fn eq_wide<const N: usize>(blocks: [&[u8; BLOCK]; N], byte: u8) -> u64 {
    blocks.iter().enumerate().fold(0, |m, (k, b)| m | u64::from(eq(b, byte)) << (16 * k as u32))
}

/// The bytes that a backslash run escapes (the byte after a run of odd length; bit 64, the byte after 64, is the
/// second result). simdjson's branchless rule: runs of odd length start on odd bits or on even ones, and adding a
/// run's start to it carries out of the run.
#[inline(always)]
fn escaped(backslash: u64) -> (u64, bool) {
    const EVEN: u64 = 0x5555_5555_5555_5555;
    let follows = backslash << 1;
    let odd_starts = backslash & !EVEN & !follows;
    let (even_starts, carry) = odd_starts.overflowing_add(backslash);
    ((EVEN ^ (even_starts << 1)) & follows, carry)
}

/// Bit `i` set when an odd number of bits `0..=i` of `x` are set.
#[inline(always)]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// The block of `s` at `at`, if `s` holds all of it.
#[inline(always)]
fn block(s: &[u8], at: usize) -> Option<&[u8; BLOCK]> {
    s.get(at..at + BLOCK).and_then(|b| <&[u8; BLOCK]>::try_from(b).ok())
}

/// Where [`bytes`] stopped.
enum Step {
    /// One past the container's closing bracket.
    Closed(usize),
    /// Where to go on (`end`, or one past it when the last byte was an escaping backslash).
    Next(usize),
}

/// The byte-at-a-time scan of `s[i..end]` from the given depth and string state; returns where it stopped and the
/// state there. (State by value: a `&mut` would keep the block loop's state in memory.)
fn bytes(s: &[u8], mut i: usize, end: usize, (mut depth, mut in_string): (usize, bool)) -> (Step, usize, bool) {
    while i < end {
        let b = s[i];
        if in_string {
            match b {
                b'\\' => i += 1, // the escaped byte is skipped below
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return (Step::Closed(i + 1), depth, in_string);
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    (Step::Next(i), depth, in_string)
}

/// The reference scan, one byte at a time: skips the container whose opening bracket is `s[start]`. `Ok` is one past
/// its closing bracket; `Err` says it is unterminated, `true` inside a string.
pub fn skip_container_bytes(s: &[u8], start: usize) -> Result<usize, bool> {
    match bytes(s, start, s.len(), (0, false)) {
        (Step::Closed(end), _, _) => Ok(end),
        (Step::Next(_), _, in_string) => Err(in_string),
    }
}

/// [`skip_container_bytes`], 64 bytes at a time: the same result for every input.
pub fn skip_container(s: &[u8], start: usize) -> Result<usize, bool> {
    skip(s, start, b"").map(|skipped| skipped.end)
}

/// What [`skip`] saw of the container it skipped. It reads whole steps, up to 64 bytes past the container's end (the
/// rest of its last step): a `false` below may come from there, never a wrong `true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skipped {
    /// One past the container's closing bracket.
    pub end: usize,
    /// With a `key`: the bytes read hold no backslash and `"key"` (quotes included, anywhere: a key, a value, nested)
    /// at most once, so the container holds no second member spelled `key`, escaped or not (what
    /// [`crate::typefield`] needs after it found the first one). An empty `key`: always `false`.
    pub single: bool,
}

/// Whether `"key"` starts at the quote at `q`: the closing quote first, then the key byte by byte (inlined: no call
/// per candidate quote, no `memcmp` for a few bytes).
#[inline(always)]
fn quoted_at(s: &[u8], q: usize, key: &[u8]) -> bool {
    let end = q + 1 + key.len();
    if end >= s.len() || s[end] != b'"' {
        return false;
    }
    let mut j = 0;
    while j < key.len() {
        if s[q + 1 + j] != key[j] {
            return false;
        }
        j += 1;
    }
    true
}

/// [`skip_container`], seeing in the same pass what [`Skipped`] says: with a `key`, whether `key` can be a repeated
/// key of the container. Four blocks a step (one near the end of `s`); the count of
/// `"key"` and backslashes in the same loop (a branch per step, not a second copy of the loop in the wasm).
pub fn skip(s: &[u8], start: usize, key: &[u8]) -> Result<Skipped, bool> {
    let watch = !key.is_empty();
    let (mut depth, mut in_string, mut i) = (0usize, false, start);
    // Watching: backslashes seen, and how many `"key"` (saturating at 2).
    let (mut backslash, mut keys) = (false, 0u8);
    // The key's first two bytes (a one-byte key: the closing quote).
    let first = key.first().copied().unwrap_or(0);
    let second = key.get(1).copied().unwrap_or(b'"');
    let done = |end: usize, backslash: bool, keys: u8| Ok(Skipped { end, single: watch && !backslash && keys <= 1 });
    loop {
        // The next step: 64 bytes, or 16 when fewer are left; with a `key`, where its first two bytes are.
        let step = match (block(s, i), block(s, i + BLOCK), block(s, i + 2 * BLOCK), block(s, i + 3 * BLOCK)) {
            (Some(a), Some(b), Some(c), Some(d)) => {
                let eqs = if watch { (eq_wide([a, b, c, d], first), eq_wide([a, b, c, d], second)) } else { (0, 0) };
                Some((wide([a, b, c, d]), 4 * BLOCK, eqs))
            }
            (Some(a), ..) => {
                Some((wide([a]), BLOCK, if watch { (eq_wide([a], first), eq_wide([a], second)) } else { (0, 0) }))
            }
            _ => None,
        };
        if let Some((m, step, (first, second))) = step {
            // The bit of the step's last byte.
            let last = 1u64 << (step - 1);
            if watch {
                backslash |= m.backslash != 0;
                // Quotes followed by the key's first two bytes (a quote in the last two bytes: those are in the
                // next step); only these are compared with the key.
                let mut quotes = m.quote & (first >> 1 | last) & (second >> 2 | last | last >> 1);
                while quotes != 0 && keys < 2 {
                    keys += u8::from(quoted_at(s, i + quotes.trailing_zeros() as usize, key));
                    quotes &= quotes - 1;
                }
            }
            let (esc, carry) = escaped(m.backslash);
            // Whether the byte after the step is escaped: the carry out of 64 bits, or the bit past 16.
            let carry = if step == 4 * BLOCK { carry } else { esc & last << 1 != 0 };
            let inside = prefix_xor(m.quote & !esc) ^ if in_string { u64::MAX } else { 0 };
            // A backslash outside a string is no escape to the byte scanner: such a step goes byte by byte.
            if m.backslash & !inside == 0 {
                let (open, close) = (m.open & !inside, m.close & !inside);
                if close.count_ones() as usize >= depth {
                    // It may close here: walk the brackets in order.
                    let mut brackets = open | close;
                    while brackets != 0 {
                        let k = brackets.trailing_zeros() as usize;
                        if open & (1 << k) != 0 {
                            depth += 1;
                        } else {
                            depth -= 1;
                            if depth == 0 {
                                return done(i + k + 1, backslash, keys);
                            }
                        }
                        brackets &= brackets - 1;
                    }
                } else {
                    depth = depth + open.count_ones() as usize - close.count_ones() as usize;
                }
                in_string = inside & last != 0;
                i += step;
                if carry {
                    // The byte a backslash at the step's end escapes is skipped, not read.
                    i += 1;
                }
                continue;
            }
        } else if i >= s.len() {
            return Err(in_string);
        }
        // Byte by byte: that step, or the tail (under 16 bytes).
        let end = s.len().min(i + step.map_or(BLOCK, |(_, step, _)| step));
        if watch {
            for (k, &b) in s[i..end].iter().enumerate() {
                backslash |= b == b'\\';
                if b == b'"' && keys < 2 {
                    keys += u8::from(quoted_at(s, i + k, key));
                }
            }
        }
        match bytes(s, i, end, (depth, in_string)) {
            (Step::Closed(end), _, _) => return done(end, backslash, keys),
            (Step::Next(next), d, in_s) => (i, depth, in_string) = (next, d, in_s),
        }
    }
}

/// The differential check of [`skip_container`] against [`skip_container_bytes`] and of [`masks`] and [`eq`] against
/// byte loops, with the inputs it is run on: shared by the core's tests, the fuzz target and the wasm-bindgen
/// test that runs the `simd128` extraction (tests/simd.rs).
pub mod differential {
    use super::*;
    use alloc::vec::Vec;

    /// Panics unless the block scan equals the byte scan from every bracket of `s`, and the extraction equals the
    /// scalar one on every 16-byte window of `s`.
    pub fn check(s: &[u8]) {
        for (start, &b) in s.iter().enumerate() {
            if matches!(b, b'{' | b'[') {
                let (fast, slow) = (skip_container(s, start), skip_container_bytes(s, start));
                assert!(fast == slow, "from {start}: blocks {fast:?}, bytes {slow:?} in {s:?}");
                // Watching ends where skipping does, and says "single" only when the plain rule over the container
                // does: no backslash and `"key"` at most once (never without a key), and always when the rule holds
                // over the rest of the line (the most it reads).
                for key in [&b""[..], b"type", b"k", b"a"] {
                    let skipped = skip(s, start, key);
                    assert!(skipped.map(|k| k.end) == slow, "watch from {start} in {s:?}");
                    let Ok(Skipped { end, single }) = skipped else { continue };
                    let region = &s[start..end];
                    let quoted = [&b"\""[..], key, b"\""].concat();
                    let single_in = |r: &[u8]| {
                        !key.is_empty()
                            && !r.contains(&b'\\')
                            && r.windows(quoted.len()).filter(|w| *w == &quoted[..]).count() <= 1
                    };
                    assert!(!single || single_in(region), "single from {start} in {s:?}");
                    assert!(single || !single_in(&s[start..]), "not single from {start} in {s:?}");
                }
            }
        }
        for at in [0, s.len() / 2, s.len().saturating_sub(1)] {
            let mut t = Vec::from(s);
            if let Some(b) = t.get_mut(at) {
                *b = b'\n';
            }
            check_newline(&t);
        }
        for w in s.windows(BLOCK) {
            let w: &[u8; BLOCK] = w.try_into().unwrap_or(&[0; BLOCK]);
            assert!(masks(w) == masks_scalar(w), "masks of {w:?}");
            let top = w.iter().enumerate().fold(0u16, |m, (i, &b)| m | (u16::from(b >= 0x80) << i));
            assert!(high(w) == top, "high of {w:?}");
            for byte in [b'"', b'\\', b't', w[0], w[15]] {
                let scalar = w.iter().enumerate().fold(0u16, |m, (i, &b)| m | (u16::from(b == byte) << i));
                assert!(eq(w, byte) == scalar, "eq {byte} of {w:?}");
            }
        }
    }

    /// Panics unless [`newline`] finds the first `\n` of `s` and says whether the bytes before it are ASCII.
    pub fn check_newline(s: &[u8]) {
        let at = s.iter().position(|&b| b == b'\n').unwrap_or(s.len());
        assert!(newline(s) == (at, s[..at].is_ascii()), "newline in {s:?}");
    }

    /// [`check_newline`] on every line of up to `max_len` bytes with a newline at any place or none, and one byte
    /// outside ASCII at any place or none (so on each side of every block edge, in blocks and in the tail).
    pub fn check_newline_everywhere(max_len: usize) {
        for len in 0..=max_len {
            for nl in 0..=len {
                for high in 0..=len {
                    let mut s = Vec::from_iter((0..len).map(|i| b'a' + (i % 26) as u8));
                    if let Some(b) = s.get_mut(high) {
                        *b = 0x80 | high as u8;
                    }
                    if let Some(b) = s.get_mut(nl) {
                        *b = b'\n';
                    }
                    check_newline(&s);
                }
            }
        }
    }

    /// A small deterministic PRNG (xorshift64*), so the inputs are the same on every target.
    #[derive(Debug)]
    pub struct Rng(u64);

    impl Rng {
        /// A generator from a seed.
        pub fn new(seed: u64) -> Self {
            Rng(seed | 1)
        }
        /// The next number below `n` (not 0).
        pub fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
        }
    }

    /// Random lines over an alphabet of structure (brackets, quotes, backslashes, non-ASCII, `0x7b`'s neighbours):
    /// `count` of them, up to `max_len` bytes.
    pub fn random(seed: u64, count: usize, max_len: usize) -> Vec<Vec<u8>> {
        const ALPHABET: &[u8] = b"{}[]\"\\\\\"\"\"a :,\x7a\x7c\x7e\x5c\xc3\xa9\xff\x00";
        let mut rng = Rng::new(seed);
        (0..count)
            .map(|_| {
                let len = 1 + rng.below(max_len);
                let mut line: Vec<u8> = (0..len).map(|_| ALPHABET[rng.below(ALPHABET.len())]).collect();
                line[0] = if rng.below(2) == 0 { b'{' } else { b'[' };
                line
            })
            .collect()
    }

    /// Hand-built hard cases: backslash runs of every length ending at every offset of a block and around the edges
    /// of a step, before a quote or not; quotes and brackets at those edges; a byte outside ASCII at each of them,
    /// escaped or not, in a step read byte by byte or not; deep nesting; unterminated strings and containers.
    pub fn adversarial() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for pad in (0..2 * BLOCK).chain(4 * BLOCK - 8..4 * BLOCK + 8).chain(8 * BLOCK - 8..8 * BLOCK + 8) {
            for run in 0..2 * BLOCK + 3 {
                for tail in [&b"\"}"[..], b"\"}\"}", b"x\"}", b"", b"\"", b"\\", b"}", b"\xff\"}"] {
                    let mut l = Vec::from(&b"{\"k\":\""[..]);
                    l.extend(core::iter::repeat(b'a').take(pad));
                    l.extend(core::iter::repeat(b'\\').take(run));
                    l.extend_from_slice(tail);
                    out.push(l);
                }
                // Outside strings (not JSON): the byte scanner does not take these backslashes as escapes.
                let mut l = Vec::from(&b"["[..]);
                l.extend(core::iter::repeat(b' ').take(pad));
                l.extend(core::iter::repeat(b'\\').take(run));
                l.extend_from_slice(b"\"a\\\"]\"]");
                out.push(l);
            }
            // A byte outside ASCII alone, where a step read byte by byte (for the backslash outside a string) ends,
            // and escaped there.
            for (head, tail) in [(&b"[\\ "[..], &b"\"\xff\"]"[..]), (b"[\\ \"", b"\\\xff\"]")] {
                let mut l = Vec::from(head);
                l.extend(core::iter::repeat(b'a').take(pad));
                l.extend_from_slice(tail);
                out.push(l);
            }
            // A watched key twice, the first one on each byte of a block edge; a key's spelling after a byte that is
            // not a quote (no key).
            for member in [&b"\"a\":1,\"a\":2}"[..], b"\"k\":\"k\"}", b"\"type\":[\"type\"]}", b"\"xa\":1,\"a\":2}"] {
                let mut l = Vec::from(&b"{"[..]);
                l.extend(core::iter::repeat(b' ').take(pad));
                l.extend_from_slice(member);
                out.push(l);
            }
            // A quote or bracket on each byte of a block edge.
            for c in [b'"', b'{', b'}', b'[', b']'] {
                let mut l = Vec::from(&b"{"[..]);
                l.extend(core::iter::repeat(b' ').take(pad));
                l.push(c);
                l.extend_from_slice(b"\"}\"]}}");
                out.push(l);
            }
        }
        for depth in [1, 15, 16, 17, 100, 1000] {
            let mut l = Vec::new();
            for d in 0..depth {
                l.extend_from_slice(if d % 2 == 0 { b"{\"k\\\"\":" } else { b"[\"\xc3\xa9]\"," });
            }
            l.push(b'1');
            let closed = l.len();
            for d in (0..depth).rev() {
                l.push(if d % 2 == 0 { b'}' } else { b']' });
            }
            out.push(l.clone());
            out.push(l[..closed + depth / 2].to_vec()); // unterminated container
            let mut open_string = l[..closed].to_vec();
            open_string.extend_from_slice(b"\"\\\"}]");
            out.push(open_string); // unterminated string
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_is_the_byte_after_an_odd_backslash_run_for_every_mask() {
        // The rule, one bit at a time: the escaped bits and whether the byte after bit 63 is escaped.
        let want = |backslash: u64| {
            let (mut want, mut run) = (0u64, 0);
            for i in 0..64 {
                if run % 2 == 1 {
                    want |= 1 << i;
                }
                run = if backslash & (1 << i) != 0 { run + 1 } else { 0 };
            }
            (want, run % 2 == 1)
        };
        // Every 16-bit pattern where a step of 16 has it (then bit 16 says whether the byte after it is escaped), at
        // the top of 64 bits (the carry out) and across the middle; then random 64-bit ones.
        for pattern in 0..=u64::from(u16::MAX) {
            for at in [0, 24, 48] {
                let backslash = pattern << at;
                assert_eq!(escaped(backslash), want(backslash), "{backslash:064b}");
            }
        }
        let mut rng = differential::Rng::new(7);
        for _ in 0..100_000 {
            let backslash = (rng.below(1 << 30) as u64) << 34 ^ (rng.below(1 << 30) as u64) << 4 ^ rng.below(16) as u64;
            assert_eq!(escaped(backslash), want(backslash), "{backslash:064b}");
        }
    }

    #[test]
    fn the_newline_search_says_where_and_whether_the_bytes_before_are_ascii() {
        differential::check_newline_everywhere(80);
    }

    #[test]
    fn blocks_scan_as_bytes_do_on_random_and_adversarial_lines() {
        let random = differential::random(0x5eed, 20_000, 300);
        let adversarial = differential::adversarial();
        for line in random.iter().chain(&adversarial) {
            differential::check(line);
        }
        // The inputs reach every outcome: closed, unterminated in a string and outside one.
        let outcomes = |lines: &[alloc::vec::Vec<u8>]| {
            let mut seen = [false; 3];
            for l in lines {
                seen[match skip(l, 0, b"") {
                    Ok(_) => 0,
                    Err(true) => 1,
                    Err(false) => 2,
                }] = true;
            }
            seen
        };
        assert_eq!(outcomes(&random), [true; 3]);
        assert_eq!(outcomes(&adversarial), [true; 3]);
    }
}
