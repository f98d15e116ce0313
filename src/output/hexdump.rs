//! The hexdump rows printed for every chunk.
//!
//! Rows are aligned to the *stream* offset, not to the chunk: a chunk that starts at
//! offset 0x0a prints its first row with ten blank cells, so consecutive chunks of one
//! direction line up as if they were one long `hexdump -C`. The text column shows
//! printable ASCII only (0x20–0x7e); every other byte becomes `.`, so the traffic can
//! never smuggle an escape sequence into the user's terminal.
//!
//! There are two layouts of the same sixteen cells:
//!
//! - The classic row, for one connection, byte-exact with the original tool and with
//!   `hexdump -C`: 78 columns.
//!
//!   `00000000  68 65 6c 6c 6f 0a 68 69  21 0a 00 00 00 00 00 00  |hello.hi!.......|`
//!
//! - The narrow row, for `-k`, where every row starts with the connection's `[N] `:
//!   73 columns, so that `[999] ` and a row make 79 and fit an 80-column terminal
//!   without touching its last column (some terminals wrap a line that fills it).
//!
//!   `00000000 68 65 6c 6c 6f 0a 68 69 21 0a 00 00 00 00 00 00 hello.hi!.......`
//!
//!   The five columns come from the spacing and the bars. One space after the offset
//!   and between the hex and the text: the columns still line up from row to row, so
//!   the eye finds the text column by its position, not by a separator. The middle
//!   gap goes: the offset already says where a row starts. Both bars go, because the
//!   classic ones would cost two columns and one bar alone would still make 80: what
//!   they showed, trailing spaces in the data, the hex cells show as `20`. Without a
//!   closing bar, a partial row's text column is not padded, so no line ends in
//!   blanks. Each byte keeps its own two-digit cell, as in the classic row.
//!
//!   Past 4 GiB in one direction the offset grows a ninth digit and the row a column
//!   (`[999] ` and a row make 80, still within the terminal); past 64 GiB a tenth.
//!
//! This is the hot path when printing, so it works from tables built at compile time
//! and appends ready-made slices to one reusable buffer; no `format!`, no per-byte
//! write calls. Both layouts share the code; a `Layout` says where things go.

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

const BYTES_PER_ROW: usize = 16;

/// Where the parts of a row go, for a row with an eight-digit offset.
struct Layout {
    /// Blanks between the offset and the first cell.
    after_offset: usize,
    /// Whether an extra blank splits the cells into two groups of eight.
    group_gap: bool,
    /// What goes between the last cell and the text column.
    before_text: &'static [u8],
    /// What closes the text column; when it is empty, a partial row's text column
    /// is not padded to sixteen.
    after_text: &'static [u8],
}

impl Layout {
    /// Where cell `i`'s two hex digits go: three columns per cell.
    const fn hex_position(&self, i: usize) -> usize {
        let gap = if self.group_gap && i >= 8 { 1 } else { 0 };
        8 + self.after_offset + 3 * i + gap
    }

    /// Where the text column starts.
    const fn text_position(&self) -> usize {
        self.hex_position(BYTES_PER_ROW - 1) + 2 + self.before_text.len()
    }

    /// A full row's length, its newline included.
    const fn row_len(&self) -> usize {
        self.text_position() + BYTES_PER_ROW + self.after_text.len() + 1
    }

    /// A full row with blanks where the offset, the cells and the text go.
    const fn template(&self) -> [u8; MAX_ROW_LEN] {
        let mut row = [b' '; MAX_ROW_LEN];
        let mut i = 0;
        while i < self.before_text.len() {
            row[self.text_position() - self.before_text.len() + i] = self.before_text[i];
            i += 1;
        }
        let mut i = 0;
        while i < self.after_text.len() {
            row[self.text_position() + BYTES_PER_ROW + i] = self.after_text[i];
            i += 1;
        }
        row[self.row_len() - 1] = b'\n';
        row
    }
}

/// The original's row, as `hexdump -C`.
const CLASSIC: Layout = Layout {
    after_offset: 2,
    group_gap: true,
    before_text: b"  |",
    after_text: b"|",
};

/// The `-k` row: see the module's notes for why it looks so.
const NARROW: Layout = Layout {
    after_offset: 1,
    group_gap: false,
    before_text: b" ",
    after_text: b"",
};

const MAX_ROW_LEN: usize = 80;

/// A layout's full-row positions, worked out at compile time for the fast path.
struct FullRow {
    template: [u8; MAX_ROW_LEN],
    hex: [usize; BYTES_PER_ROW],
    text: usize,
    len: usize,
}

impl FullRow {
    const fn of(layout: &Layout) -> FullRow {
        let mut hex = [0; BYTES_PER_ROW];
        let mut i = 0;
        while i < BYTES_PER_ROW {
            hex[i] = layout.hex_position(i);
            i += 1;
        }
        FullRow {
            template: layout.template(),
            hex,
            text: layout.text_position(),
            len: layout.row_len(),
        }
    }
}

const CLASSIC_ROW: FullRow = FullRow::of(&CLASSIC);
const NARROW_ROW: FullRow = FullRow::of(&NARROW);

/// Appends the classic rows for `bytes`, which start at stream offset `offset`.
///
/// The first row is labelled with the chunk's own offset (as the original does), the
/// following ones with their row start, which is the same thing.
pub fn write_rows(out: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    write_layout_rows(out, (&CLASSIC, &CLASSIC_ROW), b"", offset, bytes);
}

/// The narrow rows, with `prefix` (a connection's `[N] `) at the start of each one.
pub fn write_prefixed_rows(out: &mut Vec<u8>, prefix: &[u8], offset: u64, bytes: &[u8]) {
    write_layout_rows(out, (&NARROW, &NARROW_ROW), prefix, offset, bytes);
}

fn write_layout_rows(
    out: &mut Vec<u8>,
    (layout, full_row): (&Layout, &FullRow),
    prefix: &[u8],
    offset: u64,
    bytes: &[u8],
) {
    out.reserve((bytes.len() / BYTES_PER_ROW + 2) * (full_row.len + prefix.len()));
    let mut pos = offset;
    let mut rest = bytes;
    while !rest.is_empty() {
        let lead = (pos % BYTES_PER_ROW as u64) as usize;
        let take = rest.len().min(BYTES_PER_ROW - lead);
        out.extend_from_slice(prefix);
        let cells = &rest[..take];
        match <&[u8; BYTES_PER_ROW]>::try_from(cells) {
            Ok(full) if pos <= u32::MAX as u64 => write_full_row(out, full_row, pos, full),
            _ => write_row(out, layout, pos, lead, cells),
        }
        pos += take as u64;
        rest = &rest[take..];
    }
}

/// The same row as `write_row`, for 16 bytes at a row start below 4 GiB: the common
/// case, done with fixed positions in a copy of the layout's template.
fn write_full_row(out: &mut Vec<u8>, full_row: &FullRow, label: u64, cells: &[u8; 16]) {
    let mut row = full_row.template;
    for (i, digit) in (0..8).rev().zip(row[..8].iter_mut()) {
        *digit = HEX[((label >> (i * 4)) & 0xf) as usize][1];
    }
    for (i, (&b, &at)) in cells.iter().zip(&full_row.hex).enumerate() {
        row[at..at + 2].copy_from_slice(&HEX[b as usize]);
        row[full_row.text + i] = TEXT[b as usize];
    }
    out.extend_from_slice(&row[..full_row.len]);
}

/// One row: `lead` blank cells, then `cells`, then blanks up to 16.
fn write_row(out: &mut Vec<u8>, layout: &Layout, label: u64, lead: usize, cells: &[u8]) {
    write_offset(out, label);
    out.resize(out.len() + layout.after_offset, b' ');
    for column in 0..BYTES_PER_ROW {
        match column.checked_sub(lead).and_then(|i| cells.get(i)) {
            Some(&b) => out.extend_from_slice(&HEX[b as usize]),
            None => out.extend_from_slice(b"  "),
        }
        if column + 1 < BYTES_PER_ROW {
            out.push(b' ');
        }
        if layout.group_gap && column == 7 {
            out.push(b' ');
        }
    }
    out.extend_from_slice(layout.before_text);
    out.resize(out.len() + lead, b' ');
    out.extend(cells.iter().map(|&b| TEXT[b as usize]));
    if !layout.after_text.is_empty() {
        out.resize(out.len() + (BYTES_PER_ROW - lead - cells.len()), b' ');
        out.extend_from_slice(layout.after_text);
    }
    out.push(b'\n');
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
        for (layout, full_row) in [(&CLASSIC, &CLASSIC_ROW), (&NARROW, &NARROW_ROW)] {
            for row in bytes.chunks(16) {
                let cells: &[u8; 16] = row.try_into().unwrap();
                for label in [0, 0x10, 0xdead_bee0, 0xffff_fff0] {
                    let mut fast = Vec::new();
                    write_full_row(&mut fast, full_row, label, cells);
                    let mut general = Vec::new();
                    write_row(&mut general, layout, label, 0, cells);
                    assert_eq!(
                        String::from_utf8(fast).unwrap(),
                        String::from_utf8(general).unwrap()
                    );
                }
            }
        }
    }

    #[test]
    fn the_general_classic_row_is_hexdump_c() {
        // Written out by hand, so that the comparison above cannot hide a layout
        // mistake that both paths share.
        let cells: Vec<u8> = (0xf0..=0xff).collect();
        let mut general = Vec::new();
        write_row(&mut general, &CLASSIC, 0x1_0000_0000, 0, &cells);
        assert_eq!(
            String::from_utf8(general).unwrap(),
            "100000000  f0 f1 f2 f3 f4 f5 f6 f7  f8 f9 fa fb fc fd fe ff  |................|\n"
        );
    }

    fn narrow(prefix: &str, offset: u64, bytes: &[u8]) -> String {
        let mut out = Vec::new();
        write_prefixed_rows(&mut out, prefix.as_bytes(), offset, bytes);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_prefix_starts_every_narrow_row() {
        assert_eq!(
            narrow("[12] ", 14, b"abcd"),
            "[12] 0000000e                                           61 62               ab\n\
             [12] 00000010 63 64                                           cd\n"
        );
    }

    #[test]
    fn narrow_full_rows() {
        let bytes: Vec<u8> = (0x41..0x41 + 32).collect();
        assert_eq!(
            narrow("[2] ", 0x20, &bytes),
            "[2] 00000020 41 42 43 44 45 46 47 48 49 4a 4b 4c 4d 4e 4f 50 ABCDEFGHIJKLMNOP\n\
             [2] 00000030 51 52 53 54 55 56 57 58 59 5a 5b 5c 5d 5e 5f 60 QRSTUVWXYZ[\\]^_`\n"
        );
    }

    #[test]
    fn narrow_partial_rows_keep_the_columns_and_end_without_blanks() {
        assert_eq!(
            narrow("[1] ", 10, b"how are you?\n"),
            "[1] 0000000a                               68 6f 77 20 61 72           how ar\n\
             [1] 00000010 65 20 79 6f 75 3f 0a                            e you?.\n"
        );
        // A chunk inside one row: blank on both sides in hex, on the left in text.
        // The line ends in a blank here only because the data does.
        assert_eq!(
            narrow("[1] ", 3, b"a "),
            "[1] 00000003          61 20                                     a \n"
        );
    }

    #[test]
    fn narrow_rows_fit_80_columns_with_connection_999() {
        let bytes: Vec<u8> = (0..=255u8).collect();
        for offset in [0, 5, 0xfff0, 0xffff_ff00] {
            let text = narrow("[999] ", offset, &bytes);
            assert_eq!(text.lines().count(), if offset % 16 == 0 { 16 } else { 17 });
            for line in text.lines() {
                assert!(line.starts_with("[999] "), "{line}");
                assert!(line.len() <= 79, "{} columns: {line}", line.len());
            }
            let full = text.lines().nth(1).unwrap();
            assert_eq!(full.len(), 79, "{full}");
        }
    }

    #[test]
    fn narrow_offsets_past_4_gib_add_a_column_per_digit() {
        let text = narrow("[999] ", 0xffff_fffe, &[b'x'; 20]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "[999] fffffffe                                           78 78               xx"
        );
        // Nine digits: 80 columns, still within an 80-column terminal.
        assert_eq!(
            lines[1],
            "[999] 100000000 78 78 78 78 78 78 78 78 78 78 78 78 78 78 78 78 xxxxxxxxxxxxxxxx"
        );
        assert_eq!(lines[1].len(), 80);
        assert_eq!(
            lines[2],
            "[999] 100000010 78 78                                           xx"
        );
        // Ten digits, past 64 GiB: 81.
        let far = narrow("[999] ", 0x10_0000_0000, &[b'y'; 16]);
        assert_eq!(far.lines().next().unwrap().len(), 81);
    }

    #[test]
    fn narrow_text_column_is_printable_ascii_only() {
        let all: Vec<u8> = (0..=255).collect();
        for line in narrow("[3] ", 0, &all).lines() {
            let text = &line[line.len() - 16..];
            assert!(text.bytes().all(|b| (0x20..0x7f).contains(&b)), "{line}");
        }
    }

    #[test]
    fn empty_chunk_prints_nothing() {
        assert_eq!(rows(5, b""), "");
    }
}
