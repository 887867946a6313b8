//! Splitting a file into lines, over any positioned byte source.
//!
//! No file handles here: [`ReadAt`] is implemented for [`std::fs::File`]
//! (`pread`) and for byte slices, so every boundary case is unit-tested in
//! memory.
//!
//! Memory: one read buffer of at most `max_line_bytes + read_chunk_bytes`
//! lives only during a call. An incomplete last line is not kept between
//! calls: the next call reads it again from its start. A line longer than
//! `max_line_bytes` is scanned for its newline chunk by chunk (the position
//! scanned so far is kept, so a 3 MiB line costs linear time), then its first
//! `max_line_bytes` are read again and handed out, flagged truncated.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use bytes::{Bytes, BytesMut};
use memchr::memchr;

/// A source of bytes at positions: a file, or bytes in a test.
pub(crate) trait ReadAt {
    /// Reads into `buf` from `offset`; 0 at the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

impl ReadAt for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        FileExt::read_at(self, buf, offset)
    }
}

impl ReadAt for [u8] {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.len());
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
}

/// Reads, retrying on `Interrupted`.
fn read_at(src: &(impl ReadAt + ?Sized), buf: &mut [u8], offset: u64) -> io::Result<usize> {
    loop {
        match src.read_at(buf, offset) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Where reading a file stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadPos {
    /// Start of the first line not yet handed out.
    pub(crate) offset: u64,
    /// `Some(s)` while the line at `offset` is known to be longer than
    /// `max_line_bytes`: `offset..s` holds no newline; scanning goes on at `s`.
    pub(crate) skip_scanned: Option<u64>,
}

impl ReadPos {
    /// At the start of a line at `offset`.
    pub(crate) fn at(offset: u64) -> ReadPos {
        ReadPos {
            offset,
            skip_scanned: None,
        }
    }

    /// How far the file is known: nothing before this needs reading again
    /// to find a newline.
    pub(crate) fn horizon(&self) -> u64 {
        self.skip_scanned.unwrap_or(self.offset)
    }
}

/// One line found: `offset..end` in the file, `end` after its newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawLine {
    pub(crate) offset: u64,
    pub(crate) end: u64,
    /// The line without its newline, at most `max_line_bytes`.
    pub(crate) bytes: Bytes,
    pub(crate) truncated: bool,
    /// For a cut line, its last [`CUT_TAIL_BYTES`] before the newline
    /// (empty otherwise): docker json-file writes a line's stream and time
    /// after its text, so a cut line is parsed from both ends.
    pub(crate) cut_tail: Bytes,
}

/// How much of a cut line's end is kept: enough for docker's
/// `","stream":"stderr","time":"<35 bytes>"}` with room for `attrs`.
pub(crate) const CUT_TAIL_BYTES: usize = 256;

/// Sizes for [`read_lines`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_line: usize,
    pub(crate) chunk: usize,
}

/// How much one [`read_lines`] call may do.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    /// Bytes to read; checked between lines.
    pub(crate) bytes: u64,
    /// Lines to hand out.
    pub(crate) lines: usize,
}

/// How a [`read_lines`] call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadOutcome {
    /// Bytes read from the source (some may be read again next time).
    pub(crate) consumed: u64,
    /// `Some(end)`: stopped at the end of the source, found at `end`;
    /// `None`: stopped at the budget.
    pub(crate) eof_at: Option<u64>,
    /// Largest read buffer held, for the memory bound's tests.
    pub(crate) peak_buffer: usize,
}

/// Reads complete lines from `pos` into `out`, advancing `pos`, until the end
/// of `src` or the budget is spent. The byte budget is checked only between
/// lines, so a line already started is finished (or found to be too long): a
/// call reads at most `budget.bytes + max_line + chunk` bytes. At most
/// `budget.lines` lines are pushed.
///
/// On an error, `out` and `pos` are consistent with each other (the lines
/// pushed are exactly those `pos` moved past).
pub(crate) fn read_lines(
    src: &(impl ReadAt + ?Sized),
    pos: &mut ReadPos,
    limits: Limits,
    budget: Budget,
    out: &mut Vec<RawLine>,
) -> io::Result<ReadOutcome> {
    let chunk = limits.chunk.max(1);
    let max_line = limits.max_line.max(1);
    let mut outcome = ReadOutcome {
        consumed: 0,
        eof_at: None,
        peak_buffer: 0,
    };
    let mut lines = 0;
    // Bytes of the file from `pos.offset` on (only outside skip mode).
    let mut buf = BytesMut::new();
    // Bytes at the front of `buf` known to hold no newline.
    let mut searched = 0;
    let mut scratch = Vec::new();
    loop {
        if lines >= budget.lines {
            return Ok(outcome);
        }
        if let Some(scanned) = pos.skip_scanned {
            if outcome.consumed >= budget.bytes {
                return Ok(outcome);
            }
            scratch.resize(chunk, 0);
            outcome.peak_buffer = outcome.peak_buffer.max(scratch.len());
            let n = read_at(src, &mut scratch, scanned)?;
            if n == 0 {
                outcome.eof_at = Some(scanned);
                return Ok(outcome);
            }
            outcome.consumed += n as u64;
            match memchr(b'\n', &scratch[..n]) {
                Some(i) => {
                    let end = scanned + i as u64 + 1;
                    let head = read_head(src, pos.offset, max_line)?;
                    let tail_from = (end - 1)
                        .saturating_sub(CUT_TAIL_BYTES as u64)
                        .max(pos.offset);
                    let cut_tail = read_head(src, tail_from, (end - 1 - tail_from) as usize)?;
                    out.push(RawLine {
                        offset: pos.offset,
                        end,
                        bytes: head,
                        truncated: true,
                        cut_tail,
                    });
                    lines += 1;
                    *pos = ReadPos::at(end);
                }
                None => pos.skip_scanned = Some(scanned + n as u64),
            }
            continue;
        }

        if buf.is_empty() && outcome.consumed >= budget.bytes {
            return Ok(outcome);
        }
        let old_len = buf.len();
        buf.resize(old_len + chunk, 0);
        let n = read_at(src, &mut buf[old_len..], pos.offset + old_len as u64)?;
        buf.truncate(old_len + n);
        outcome.peak_buffer = outcome.peak_buffer.max(old_len + chunk);
        if n == 0 {
            // An incomplete last line stays unread: read again next call.
            outcome.eof_at = Some(pos.offset + old_len as u64);
            return Ok(outcome);
        }
        outcome.consumed += n as u64;
        while lines < budget.lines
            && let Some(i) = memchr(b'\n', &buf[searched..])
        {
            let len = searched + i;
            let mut line = buf.split_to(len + 1);
            let cut_tail = if len > max_line {
                Bytes::copy_from_slice(&line[len.saturating_sub(CUT_TAIL_BYTES)..len])
            } else {
                Bytes::new()
            };
            line.truncate(len.min(max_line));
            let end = pos.offset + len as u64 + 1;
            out.push(RawLine {
                offset: pos.offset,
                end,
                bytes: line.freeze(),
                truncated: len > max_line,
                cut_tail,
            });
            lines += 1;
            *pos = ReadPos::at(end);
            searched = 0;
        }
        if lines >= budget.lines {
            // What is left in `buf` is read again next call.
            return Ok(outcome);
        }
        searched = buf.len();
        if buf.len() > max_line {
            // Too long: drop what we hold and look for its end chunk by chunk.
            pos.skip_scanned = Some(pos.offset + buf.len() as u64);
            buf = BytesMut::new();
            searched = 0;
        }
    }
}

/// The first `max` bytes from `offset` (fewer at the end of `src`).
pub(crate) fn read_head(
    src: &(impl ReadAt + ?Sized),
    offset: u64,
    max: usize,
) -> io::Result<Bytes> {
    let mut head = BytesMut::zeroed(max);
    let mut filled = 0;
    while filled < max {
        let n = read_at(src, &mut head[filled..], offset + filled as u64)?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    head.truncate(filled);
    Ok(head.freeze())
}

/// Hands out the unterminated last line `pos.offset..size` (of a rotated or
/// gone file whose writer has moved on), cut to `max_line`, and moves `pos` to
/// `size`. `None` if nothing is pending.
pub(crate) fn flush_unterminated(
    src: &(impl ReadAt + ?Sized),
    pos: &mut ReadPos,
    size: u64,
    max_line: usize,
) -> io::Result<Option<RawLine>> {
    if pos.offset >= size {
        return Ok(None);
    }
    let len = size - pos.offset;
    let want = usize::try_from(len)
        .unwrap_or(usize::MAX)
        .min(max_line.max(1));
    let truncated = len > want as u64;
    let cut_tail = if truncated {
        let from = size.saturating_sub(CUT_TAIL_BYTES as u64).max(pos.offset);
        read_head(src, from, (size - from) as usize)?
    } else {
        Bytes::new()
    };
    let line = RawLine {
        offset: pos.offset,
        end: size,
        bytes: read_head(src, pos.offset, want)?,
        truncated,
        cut_tail,
    };
    *pos = ReadPos::at(line.end);
    Ok(Some(line))
}

/// The start of the line after the last complete line before `size`: where
/// `read_from: end` begins. Scans backwards chunk by chunk.
pub(crate) fn last_line_start(
    src: &(impl ReadAt + ?Sized),
    size: u64,
    chunk: usize,
) -> io::Result<u64> {
    let chunk = chunk.max(1) as u64;
    let mut buf = vec![0; chunk as usize];
    let mut end = size;
    while end > 0 {
        let start = end.saturating_sub(chunk);
        let want = (end - start) as usize;
        let window = &mut buf[..want];
        let mut filled = 0;
        while filled < want {
            let n = read_at(src, &mut window[filled..], start + filled as u64)?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if let Some(i) = memchr::memrchr(b'\n', &window[..filled]) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What the lines of `content` must be: every `\n`-terminated line, cut.
    fn reference(content: &[u8], from: u64, max_line: usize) -> Vec<RawLine> {
        let mut out = Vec::new();
        let mut start = from as usize;
        while let Some(i) = memchr(b'\n', &content[start..]) {
            let len = i;
            out.push(RawLine {
                offset: start as u64,
                end: (start + len + 1) as u64,
                bytes: Bytes::copy_from_slice(&content[start..start + len.min(max_line)]),
                truncated: len > max_line,
                cut_tail: if len > max_line {
                    let end = start + len;
                    Bytes::copy_from_slice(&content[end - len.min(CUT_TAIL_BYTES)..end])
                } else {
                    Bytes::new()
                },
            });
            start += len + 1;
        }
        out
    }

    fn budget(bytes: u64) -> Budget {
        Budget {
            bytes,
            lines: usize::MAX,
        }
    }

    fn read_all(content: &[u8], max_line: usize, chunk: usize, max_bytes: u64) -> Vec<RawLine> {
        let mut pos = ReadPos::at(0);
        let mut out = Vec::new();
        for _ in 0..10_000 {
            let o = read_lines(
                content,
                &mut pos,
                Limits { max_line, chunk },
                budget(max_bytes),
                &mut out,
            )
            .unwrap();
            if o.eof_at.is_some() {
                break;
            }
        }
        out
    }

    /// A line cut to `bytes`, whose end (up to [`CUT_TAIL_BYTES`]) is `tail`.
    fn cut(offset: u64, end: u64, bytes: &[u8], tail: &[u8]) -> RawLine {
        RawLine {
            cut_tail: Bytes::copy_from_slice(tail),
            ..line(offset, end, bytes, true)
        }
    }

    fn line(offset: u64, end: u64, bytes: &[u8], truncated: bool) -> RawLine {
        RawLine {
            offset,
            end,
            bytes: Bytes::copy_from_slice(bytes),
            truncated,
            cut_tail: Bytes::new(),
        }
    }

    #[test]
    fn split_table() {
        // (content, max_line, chunk, expected lines)
        let cases: Vec<(&[u8], usize, usize, Vec<RawLine>)> = vec![
            (b"", 10, 4, vec![]),
            (b"no newline yet", 100, 4, vec![]),
            (b"\n", 10, 4, vec![line(0, 1, b"", false)]),
            (
                b"a\nbc\n",
                10,
                1,
                vec![line(0, 2, b"a", false), line(2, 5, b"bc", false)],
            ),
            (
                b"a\nbc\npartial",
                10,
                3,
                vec![line(0, 2, b"a", false), line(2, 5, b"bc", false)],
            ),
            // Exactly max_line is not truncated; one more is.
            (
                b"abcd\nabcde\n",
                4,
                2,
                vec![line(0, 5, b"abcd", false), cut(5, 11, b"abcd", b"abcde")],
            ),
            // A long line completed in the buffer and one found by scanning.
            (
                b"x\nlooooooooooooong\ny\n",
                3,
                64,
                vec![
                    line(0, 2, b"x", false),
                    cut(2, 19, b"loo", b"looooooooooooong"),
                    line(19, 21, b"y", false),
                ],
            ),
            (
                b"x\nlooooooooooooong\ny\n",
                3,
                2,
                vec![
                    line(0, 2, b"x", false),
                    cut(2, 19, b"loo", b"looooooooooooong"),
                    line(19, 21, b"y", false),
                ],
            ),
            // Bytes are bytes: invalid UTF-8 and \r pass untouched.
            (
                b"\xff\xfe\r\n\xc3(\n",
                10,
                3,
                vec![
                    line(0, 4, b"\xff\xfe\r", false),
                    line(4, 7, b"\xc3(", false),
                ],
            ),
        ];
        for (i, (content, max_line, chunk, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                read_all(content, max_line, chunk, u64::MAX),
                want,
                "case {i}"
            );
            assert_eq!(
                read_all(content, max_line, chunk, 1),
                want,
                "case {i}, tiny budget"
            );
        }
    }

    #[test]
    fn incomplete_line_waits_and_is_read_again_whole() {
        let mut content = b"first\nsec".to_vec();
        let mut pos = ReadPos::at(0);
        let mut out = Vec::new();
        let limits = Limits {
            max_line: 100,
            chunk: 4,
        };
        let o = read_lines(
            content.as_slice(),
            &mut pos,
            limits,
            budget(u64::MAX),
            &mut out,
        )
        .unwrap();
        assert_eq!(o.eof_at, Some(9));
        assert_eq!(out, vec![line(0, 6, b"first", false)]);
        assert_eq!(pos, ReadPos::at(6));
        content.extend_from_slice(b"ond\n");
        read_lines(
            content.as_slice(),
            &mut pos,
            limits,
            budget(u64::MAX),
            &mut out,
        )
        .unwrap();
        assert_eq!(out[1], line(6, 13, b"second", false));
    }

    #[test]
    fn long_line_across_calls_keeps_its_scan_position() {
        let mut content = b"ok\n".to_vec();
        content.extend(std::iter::repeat_n(b'a', 50));
        let limits = Limits {
            max_line: 8,
            chunk: 16,
        };
        let mut pos = ReadPos::at(0);
        let mut out = Vec::new();
        read_lines(
            content.as_slice(),
            &mut pos,
            limits,
            budget(u64::MAX),
            &mut out,
        )
        .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(pos.offset, 3);
        assert_eq!(pos.skip_scanned, Some(53));
        content.extend(std::iter::repeat_n(b'a', 50));
        content.extend_from_slice(b"\nz\n");
        let o = read_lines(
            content.as_slice(),
            &mut pos,
            limits,
            budget(u64::MAX),
            &mut out,
        )
        .unwrap();
        assert_eq!(out[1], cut(3, 104, b"aaaaaaaa", &[b'a'; 100]));
        assert_eq!(out[2], line(104, 106, b"z", false));
        // Only the rest of the long line was scanned again, plus its head.
        assert!(o.consumed <= 56, "consumed {}", o.consumed);
    }

    #[test]
    fn three_mib_line_costs_bounded_memory() {
        let max_line = 256 * 1024;
        let chunk = 64 * 1024;
        let mut content = b"before\n".to_vec();
        content.extend(std::iter::repeat_n(b'x', 3 * 1024 * 1024));
        content.extend_from_slice(b"\nafter\n");
        let mut pos = ReadPos::at(0);
        let mut out = Vec::new();
        let o = read_lines(
            content.as_slice(),
            &mut pos,
            Limits { max_line, chunk },
            budget(u64::MAX),
            &mut out,
        )
        .unwrap();
        assert!(o.peak_buffer <= max_line + chunk, "peak {}", o.peak_buffer);
        assert_eq!(out.len(), 3);
        assert_eq!(out[1].offset, 7);
        assert_eq!(out[1].end, 7 + 3 * 1024 * 1024 + 1);
        assert_eq!(out[1].bytes.len(), max_line);
        assert!(out[1].truncated);
        assert_eq!(
            out[2],
            line(
                7 + 3 * 1024 * 1024 + 1,
                content.len() as u64,
                b"after",
                false
            )
        );
        // Linear: each byte read about once, plus the head read again.
        assert!(
            o.consumed <= content.len() as u64 + chunk as u64,
            "consumed {}",
            o.consumed
        );
    }

    #[test]
    fn budget_stops_between_lines() {
        let content = b"aaaa\nbbbb\ncccc\n";
        let mut pos = ReadPos::at(0);
        let mut out = Vec::new();
        let limits = Limits {
            max_line: 100,
            chunk: 5,
        };
        let o = read_lines(&content[..], &mut pos, limits, budget(5), &mut out).unwrap();
        assert_eq!(o.eof_at, None);
        assert_eq!(out.len(), 1);
        assert_eq!(pos, ReadPos::at(5));
    }

    #[test]
    fn line_budget_stops_exactly() {
        let content = b"a\nb\nc\nd\n";
        let limits = Limits {
            max_line: 100,
            chunk: 64,
        };
        let mut pos = ReadPos::at(0);
        let mut out = Vec::new();
        let o = read_lines(
            &content[..],
            &mut pos,
            limits,
            Budget {
                bytes: u64::MAX,
                lines: 3,
            },
            &mut out,
        )
        .unwrap();
        assert_eq!((out.len(), o.eof_at, pos), (3, None, ReadPos::at(6)));
        let o = read_lines(
            &content[..],
            &mut pos,
            limits,
            Budget {
                bytes: u64::MAX,
                lines: 3,
            },
            &mut out,
        )
        .unwrap();
        assert_eq!((out.len(), o.eof_at), (4, Some(8)));
    }

    #[test]
    fn flush_unterminated_table() {
        // (content, offset, max_line, expected line)
        let cases: Vec<(&[u8], u64, usize, Option<RawLine>)> = vec![
            (b"a\n", 2, 10, None),
            (b"a\nrest", 2, 10, Some(line(2, 6, b"rest", false))),
            (b"a\nrest", 2, 2, Some(cut(2, 6, b"re", b"rest"))),
        ];
        for (i, (content, offset, max_line, want)) in cases.into_iter().enumerate() {
            let mut pos = ReadPos::at(offset);
            let got =
                flush_unterminated(content, &mut pos, content.len() as u64, max_line).unwrap();
            assert_eq!(got, want, "case {i}");
            assert_eq!(pos, ReadPos::at(content.len() as u64), "case {i}");
        }
    }

    #[test]
    fn last_line_start_table() {
        let cases: &[(&[u8], usize, u64)] = &[
            (b"", 4, 0),
            (b"abc", 2, 0),
            (b"abc\n", 2, 4),
            (b"abc\nde", 2, 4),
            (b"abc\ndefghijkl", 3, 4),
            (b"\n", 1, 1),
        ];
        for &(content, chunk, want) in cases {
            assert_eq!(
                last_line_start(content, content.len() as u64, chunk).unwrap(),
                want,
                "{content:?}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the chunk size, budget and the moments the file grows,
        /// the lines are exactly the reference split.
        #[test]
        fn tail_reader_matches_reference_split(
            content in prop::collection::vec(
                prop_oneof![4 => Just(b'\n'), 10 => any::<u8>(), 10 => Just(b'x')], 0..300),
            max_line in 1usize..40,
            chunk in 1usize..50,
            budget in 1u64..100,
            max_lines in 1usize..5,
            cuts in prop::collection::vec(0usize..300, 0..6),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(content.len())).collect();
            cuts.sort_unstable();
            cuts.push(content.len());
            let mut pos = ReadPos::at(0);
            let mut out = Vec::new();
            let limits = Limits { max_line, chunk };
            for cut in cuts {
                let visible = &content[..cut];
                for _ in 0..1_000 {
                    let o = read_lines(visible, &mut pos, limits, Budget { bytes: budget, lines: max_lines }, &mut out).unwrap();
                    prop_assert!(o.peak_buffer <= max_line + chunk);
                    if let Some(end) = o.eof_at {
                        prop_assert_eq!(end, visible.len() as u64);
                        break;
                    }
                }
            }
            prop_assert_eq!(out, reference(&content, 0, max_line));
        }
    }
}
