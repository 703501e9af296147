"""CSV codec: samples, header rules, RFC 4180 quoting, encodings and the streaming reader."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from connectors.codecs import DecodeLimits, decode, detect_encoding, iter_csv_rows
from gateway.errors import PayloadError

SAMPLES = Path(__file__).resolve().parents[2] / "config" / "samples"
BATCH_OK = SAMPLES / "batch-files" / "113301220025023382_XZCF_20250612_001.csv"
BATCH_BAD = SAMPLES / "batch-files" / "113301220025023382_XZCF_20250612_002.csv"
CREDIT_V1 = SAMPLES / "credit-publication" / "inbound-v1-2016-cf.csv"


def _code(data: bytes, **kwargs: object) -> str:
    with pytest.raises(PayloadError) as caught:
        decode("csv", data, **kwargs)  # type: ignore[arg-type]
    return caught.value.code


def test_gbk_batch_sample_decodes_with_normalised_headers() -> None:
    rows = decode("csv", BATCH_OK.read_bytes())
    assert len(rows) == 20
    first = rows[0]
    assert first["行政相对人名称"] == "桐庐示例食品有限公司"
    assert first["统一社会信用代码"] == "91330122MA2J8Q5R54"
    # Full-width brackets in the header become half-width (NFKC).
    assert first["罚款金额(元)"] == "50000"
    assert "罚款金额（元）" not in first
    assert first["没收违法所得、没收非法财物金额(元)"] == "3260"
    assert first["处罚决定日期"] == "2025/5/6"
    assert first["证件类型"] == ""
    assert first["处罚机关统一社会信用代码"] == "113301220025023382"
    assert len(first) == 26


def test_bad_rows_sample_still_decodes_every_row() -> None:
    rows = decode("csv", BATCH_BAD.read_bytes())
    assert len(rows) == 8
    assert rows[5]["处罚决定日期"] == "2025/6/31"
    assert rows[2]["处罚决定书文号"] == ""


def test_credit_v1_gbk_with_english_headers() -> None:
    rows = decode("csv", CREDIT_V1.read_bytes())
    assert [row["CF_WSH"] for row in rows] == [
        "杭西市监罚〔2016〕0245号", "桐市监罚〔2017〕0112号", "桐市监罚〔2018〕0087号"
    ]
    assert rows[0]["CF_XDR_ZDM"] == "MA27XY8Q-3"
    assert rows[0]["CF_JDRQ"] == "2016/09/14"
    assert rows[2]["BZ"] == "经行政复议撤销"


def test_utf8_with_and_without_bom_and_configured_encoding() -> None:
    text = "名称,金额\r\n示例公司,100\r\n"
    expected = [{"名称": "示例公司", "金额": "100"}]
    assert decode("csv", text.encode("utf-8")) == expected
    assert decode("csv", b"\xef\xbb\xbf" + text.encode("utf-8")) == expected
    assert decode("csv", text.encode("gbk"), encoding="GBK") == expected
    assert decode("csv", text.encode("gbk"), encoding="gb2312") == expected
    assert decode("csv", b"\xef\xbb\xbf" + text.encode("utf-8"), encoding="utf-8") == expected


def test_gb18030_only_character_decodes_when_detected() -> None:
    # U+20087 is outside GBK: a four-byte GB18030 sequence.
    text = "名称\r\n𠂇记\r\n"
    assert decode("csv", text.encode("gb18030")) == [{"名称": "𠂇记"}]


def test_configured_encoding_that_does_not_match_is_refused() -> None:
    assert _code("名称\r\n示例\r\n".encode("gbk"), encoding="utf-8") == "ENCODING"


def test_neither_utf8_nor_gbk_is_refused() -> None:
    assert _code(b"name,value\r\n\xff\xfe\xfd,1\r\n") == "ENCODING"


def test_binary_content_is_refused() -> None:
    assert _code(b"name\r\nab\x00cd\r\n") == "ENCODING"


def test_unknown_or_non_text_encoding_is_refused() -> None:
    assert _code(b"a\r\n1\r\n", encoding="no-such-codec") == "ENCODING"
    assert _code(b"a\r\n1\r\n", encoding="zlib") == "ENCODING"


def test_rfc4180_quoting_and_embedded_line_breaks() -> None:
    data = 'a,b,c\r\n"x, y","say ""hi""","line1\r\nline2"\r\n'.encode("gbk")
    assert decode("csv", data) == [{"a": "x, y", "b": 'say "hi"', "c": "line1\r\nline2"}]


def test_cells_are_kept_as_written() -> None:
    assert decode("csv", b"a,b\r\n  x ,\r\n") == [{"a": "  x ", "b": ""}]


def test_lf_and_cr_line_ends_also_work() -> None:
    assert decode("csv", b"a,b\n1,2\n3,4") == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]
    assert decode("csv", b"a,b\r1,2\r") == [{"a": "1", "b": "2"}]


def test_header_names_trimmed_including_full_width_space() -> None:
    data = " 名称\u3000,（元）\r\n甲,1\r\n".encode("gb18030")
    assert decode("csv", data) == [{"名称": "甲", "(元)": "1"}]


def test_duplicate_header_is_malformed() -> None:
    # Two spellings that normalise to the same name are the same column twice.
    assert _code("金额（元）,金额(元)\r\n1,2\r\n".encode("gbk")) == "MALFORMED"


def test_empty_header_name_is_header_missing() -> None:
    assert _code(b"a,,c\r\n1,2,3\r\n") == "HEADER_MISSING"


def test_empty_file_is_header_missing() -> None:
    assert _code(b"") == "HEADER_MISSING"
    assert _code(b"\r\n") == "HEADER_MISSING"


def test_trailing_unnamed_empty_columns_are_ignored() -> None:
    assert decode("csv", b"a,b,,\r\n1,2,,\r\n") == [{"a": "1", "b": "2"}]


def test_value_in_an_unnamed_column_is_malformed() -> None:
    with pytest.raises(PayloadError) as caught:
        decode("csv", b"a,b\r\n1,2\r\n1,2,3\r\n")
    assert caught.value.code == "MALFORMED"
    assert caught.value.location == "row 2"


def test_short_record_is_malformed_with_its_row() -> None:
    with pytest.raises(PayloadError) as caught:
        decode("csv", b"a,b\r\n1,2\r\n3\r\n")
    assert (caught.value.code, caught.value.location) == ("MALFORMED", "row 2")


def test_blank_rows_inside_keep_numbering_and_trailing_ones_are_dropped() -> None:
    rows = decode("csv", b"a,b\r\n1,2\r\n\r\n,\r\n3,4\r\n\r\n\r\n")
    assert rows == [{"a": "1", "b": "2"}, {"a": "", "b": ""}, {"a": "", "b": ""}, {"a": "3", "b": "4"}]


def test_unterminated_quote_is_malformed() -> None:
    assert _code(b'a,b\r\n"open,2\r\n') == "MALFORMED"


def test_garbage_after_closing_quote_is_malformed() -> None:
    assert _code(b'a,b\r\n"x"y,2\r\n') == "MALFORMED"


def test_oversized_field_is_malformed_not_a_crash() -> None:
    assert _code(b"a\r\n" + b"x" * 200_000 + b"\r\n") == "MALFORMED"


def test_max_rows() -> None:
    data = b"a\r\n" + b"1\r\n" * 11
    assert len(decode("csv", data, max_rows=11)) == 11
    assert _code(data, max_rows=10) == "PAYLOAD_TOO_LARGE"


def test_max_bytes_is_checked_on_the_stream_too() -> None:
    stream = io.BytesIO(b"a\r\n" + b"1\r\n" * 1000)
    with pytest.raises(PayloadError) as caught:
        list(iter_csv_rows(stream, limits=DecodeLimits(max_bytes=100), chunk_bytes=16))
    assert caught.value.code == "PAYLOAD_TOO_LARGE"


# --- streaming ----------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 5, 7, 64, 4096])
def test_streaming_never_splits_a_gbk_character(chunk_bytes: int) -> None:
    data = BATCH_OK.read_bytes()
    expected = decode("csv", data)
    rows = list(iter_csv_rows(io.BytesIO(data), encoding=None, chunk_bytes=chunk_bytes))
    assert rows == expected
    configured = list(iter_csv_rows(io.BytesIO(data), encoding="gbk", chunk_bytes=chunk_bytes))
    assert configured == expected


@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 4, 5])
def test_streaming_splits_bom_crlf_and_four_byte_sequences(chunk_bytes: int) -> None:
    text = "名称,说明\r\n𠂇,\"a\r\nb\"\r\n乙,c\r\n"
    for encoded in (b"\xef\xbb\xbf" + text.encode("utf-8"), text.encode("gb18030")):
        rows = list(iter_csv_rows(io.BytesIO(encoded), encoding=None, chunk_bytes=chunk_bytes))
        assert rows == [{"名称": "𠂇", "说明": "a\r\nb"}, {"名称": "乙", "说明": "c"}]


def test_streaming_detects_gbk_that_starts_after_a_long_ascii_prefix() -> None:
    # English headers and ASCII rows first (credit v1 style), GBK only later, across many chunks.
    data = b"CF_WSH,BZ\r\n" + b"X-0001,plain\r\n" * 5000 + "Y-0002,经行政复议撤销\r\n".encode("gbk")
    rows = list(iter_csv_rows(io.BytesIO(data), encoding=None, chunk_bytes=1024))
    assert len(rows) == 5001
    assert rows[-1] == {"CF_WSH": "Y-0002", "BZ": "经行政复议撤销"}


def test_streaming_yields_rows_before_a_bad_one() -> None:
    stream = io.BytesIO(b"a,b\r\n1,2\r\n3\r\n")
    rows = iter_csv_rows(stream)
    assert next(rows) == {"a": "1", "b": "2"}
    with pytest.raises(PayloadError):
        next(rows)


def test_streaming_reads_in_bounded_chunks() -> None:
    class CountingStream(io.BytesIO):
        largest = 0

        def read(self, size: int | None = -1) -> bytes:
            data = super().read(size)
            CountingStream.largest = max(CountingStream.largest, len(data))
            return data

    stream = CountingStream(BATCH_OK.read_bytes())
    assert len(list(iter_csv_rows(stream, chunk_bytes=256))) == 20
    assert CountingStream.largest == 256


def test_detect_encoding() -> None:
    gbk = BATCH_OK.read_bytes()
    assert detect_encoding(gbk[:1000]) == "gb18030"
    assert detect_encoding("名称".encode()[:4]) == "utf-8"  # cut inside a character
    assert detect_encoding(b"\xef\xbb\xbfname") == "utf-8-sig"
    assert detect_encoding(b"plain ascii") == "utf-8"
    with pytest.raises(PayloadError) as caught:
        detect_encoding(b"\xff\xff\xff")
    assert caught.value.code == "ENCODING"
