//! The hexdump rows printed for every chunk, byte-exact with the original tool.
//!
//! Rows are aligned to the *stream* offset, not to the chunk: a chunk that starts at
//! offset 0x0a prints its first row with ten blank cells, so consecutive chunks of one
//! direction line up as if they were one long `hexdump -C`. The text column shows
//! printable ASCII only (0x20–0x7e); every other byte becomes `.`, so the traffic can
//! never smuggle an escape sequence into the user's terminal.
//!
//! This is the hot path when printing, so it works from tables built at compile time
//! and appends ready-made slices to one reusable buffer; no `format!`, no per-byte
//! write calls.

/// `HEX[b]` is the two lowercase hex digits of `b`.
pub(crate) const HEX: [[u8; 2]; 256] = {
    let digits = *b"0123456789abcdef";
    let mut table = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = [digits[i >> 4], digits[i & 0xf]];
        i += 1;
    }
    table
};

/// `TEXT[b]` is how `b` looks in the text column.
const TEXT: [u8; 256] = {
    let mut table = [b'.'; 256];
    let mut i = 0x20;
    while i < 0x7f {
        table[i] = i as u8;
        i += 1;
    }
    table
};

const BYTES_PER_ROW: u64 = 16;

/// Appends the rows for `bytes`, which start at stream offset `offset`.
///
/// The first row is labelled with the chunk's own offset (as the original does), the
/// following ones with their row start, which is the same thing.
pub fn write_rows(out: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    write_prefixed_rows(out, b"", offset, bytes);
}

/// As `write_rows`, with `prefix` (a connection's `[N] `) at the start of every row.
pub fn write_prefixed_rows(out: &mut Vec<u8>, prefix: &[u8], offset: u64, bytes: &[u8]) {
    out.reserve((bytes.len() / 16 + 2) * (ROW_LEN + 1 + prefix.len()));
    let mut pos = offset;
    let mut rest = bytes;
    while !rest.is_empty() {
        let row_start = pos - pos % BYTES_PER_ROW;
        let lead = (pos - row_start) as usize;
        let take = rest.len().min(BYTES_PER_ROW as usize - lead);
        out.extend_from_slice(prefix);
        write_row(out, pos, lead, &rest[..take]);
        pos += take as u64;
        rest = &rest[take..];
    }
}

/// A full row with an eight-digit offset: the common case, done with fixed positions.
const ROW_LEN: usize = 79;
const ROW_TEMPLATE: [u8; ROW_LEN] = {
    let mut row = [b' '; ROW_LEN];
    row[60] = b'|';
    row[77] = b'|';
    row[ROW_LEN - 1] = b'\n';
    row
};

/// Where cell `i`'s two hex digits go in a row: after the offset and two spaces,
/// three columns per cell, one more space after the eighth.
const fn hex_position(i: usize) -> usize {
    10 + 3 * i + if i >= 8 { 1 } else { 0 }
}

/// The same row as `write_row`, for 16 bytes at a row start below 4 GiB.
fn write_full_row(out: &mut Vec<u8>, label: u64, cells: &[u8; 16]) {
    let mut row = ROW_TEMPLATE;
    for (i, pair) in (0..8).rev().zip(row[..8].iter_mut()) {
        *pair = HEX[((label >> (i * 4)) & 0xf) as usize][1];
    }
    for (i, &b) in cells.iter().enumerate() {
        let at = hex_position(i);
        row[at..at + 2].copy_from_slice(&HEX[b as usize]);
        row[61 + i] = TEXT[b as usize];
    }
    out.extend_from_slice(&row);
}

/// One row: `lead` blank cells, then `cells`, then blanks up to 16.
fn write_row(out: &mut Vec<u8>, label: u64, lead: usize, cells: &[u8]) {
    if let (0, Ok(full)) = (lead, <&[u8; 16]>::try_from(cells)) {
        if label <= u32::MAX as u64 {
            return write_full_row(out, label, full);
        }
    }
    write_offset(out, label);
    out.extend_from_slice(b"  ");
    for column in 0..BYTES_PER_ROW as usize {
        match column.checked_sub(lead).and_then(|i| cells.get(i)) {
            Some(&b) => {
                out.extend_from_slice(&HEX[b as usize]);
                out.push(b' ');
            }
            None => out.extend_from_slice(b"   "),
        }
        if column == 7 {
            out.push(b' ');
        }
    }
    out.extend_from_slice(b" |");
    out.resize(out.len() + lead, b' ');
    out.extend(cells.iter().map(|&b| TEXT[b as usize]));
    out.resize(
        out.len() + (BYTES_PER_ROW as usize - lead - cells.len()),
        b' ',
    );
    out.extend_from_slice(b"|\n");
}

/// `%08x`: at least eight lowercase hex digits, more once the stream passes 4 GiB.
fn write_offset(out: &mut Vec<u8>, value: u64) {
    let digits = (16 - value.leading_zeros() as usize / 4).max(8);
    for shift in (0..digits).rev() {
        let nibble = (value >> (shift * 4)) & 0xf;
        out.push(HEX[nibble as usize][1]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(offset: u64, bytes: &[u8]) -> String {
        let mut out = Vec::new();
        write_rows(&mut out, offset, bytes);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_short_chunk_at_the_start() {
        assert_eq!(
            rows(0, b"hello\n"),
            "00000000  68 65 6c 6c 6f 0a                                 |hello.          |\n"
        );
    }

    #[test]
    fn a_chunk_that_starts_mid_row_keeps_the_stream_alignment() {
        assert_eq!(
            rows(10, b"how are you?\n"),
            "0000000a                                 68 6f 77 20 61 72  |          how ar|\n\
             00000010  65 20 79 6f 75 3f 0a                              |e you?.         |\n"
        );
    }

    #[test]
    fn full_rows_and_the_group_gap() {
        let bytes: Vec<u8> = (0x41..0x41 + 32).collect();
        assert_eq!(
            rows(0x20, &bytes),
            "00000020  41 42 43 44 45 46 47 48  49 4a 4b 4c 4d 4e 4f 50  |ABCDEFGHIJKLMNOP|\n\
             00000030  51 52 53 54 55 56 57 58  59 5a 5b 5c 5d 5e 5f 60  |QRSTUVWXYZ[\\]^_`|\n"
        );
    }

    #[test]
    fn a_chunk_inside_one_row_is_blank_on_both_sides() {
        assert_eq!(
            rows(3, b"ab"),
            "00000003           61 62                                    |   ab           |\n"
        );
    }

    #[test]
    fn only_printable_ascii_reaches_the_text_column() {
        let all: Vec<u8> = (0..=255).collect();
        let text = rows(0, &all);
        for line in text.lines() {
            let column = &line[line.find('|').unwrap() + 1..line.len() - 1];
            assert!(column.bytes().all(|b| (0x20..0x7f).contains(&b)), "{line}");
        }
        assert!(text.contains("|................|"));
        assert!(text.contains(
            "00000070  70 71 72 73 74 75 76 77  78 79 7a 7b 7c 7d 7e 7f  |pqrstuvwxyz{|}~.|"
        ));
        assert!(text.contains(
            "000000f0  f0 f1 f2 f3 f4 f5 f6 f7  f8 f9 fa fb fc fd fe ff  |................|"
        ));
    }

    #[test]
    fn offsets_past_4_gib_grow_more_digits() {
        assert_eq!(
            rows(0xffff_fffe, b"xyz"),
            "fffffffe                                             78 79  |              xy|\n\
             100000000  7a                                                |z               |\n"
        );
        assert_eq!(
            rows(0x12_3456_7890, b"A").split("  ").next(),
            Some("1234567890")
        );
    }

    #[test]
    fn the_full_row_fast_path_matches_the_general_one() {
        let bytes: Vec<u8> = (0..=255u8).rev().collect();
        for row in bytes.chunks(16) {
            let cells: &[u8; 16] = row.try_into().unwrap();
            for label in [0, 0x10, 0xdead_bee0, 0xffff_fff0] {
                let mut fast = Vec::new();
                write_full_row(&mut fast, label, cells);
                let mut general = Vec::new();
                write_offset(&mut general, label);
                general.extend_from_slice(b"  ");
                // The general path, by hand: cells, the gap, the text column.
                for (i, b) in cells.iter().enumerate() {
                    general.extend_from_slice(&HEX[*b as usize]);
                    general.push(b' ');
                    if i == 7 {
                        general.push(b' ');
                    }
                }
                general.extend_from_slice(b" |");
                general.extend(cells.iter().map(|&b| TEXT[b as usize]));
                general.extend_from_slice(b"|\n");
                assert_eq!(
                    String::from_utf8(fast).unwrap(),
                    String::from_utf8(general).unwrap()
                );
            }
        }
    }

    #[test]
    fn a_prefix_starts_every_row() {
        let mut out = Vec::new();
        write_prefixed_rows(&mut out, b"[12] ", 14, b"abcd");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "[12] 0000000e                                             61 62  |              ab|\n\
             [12] 00000010  63 64                                             |cd              |\n"
        );
    }

    #[test]
    fn empty_chunk_prints_nothing() {
        assert_eq!(rows(5, b""), "");
    }
}
