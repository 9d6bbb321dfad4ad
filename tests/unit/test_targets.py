"""Target list parsing: our format, Citizen Lab CSV, bad lines reported with file and line."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from probe.targets import BadLine, Target, read_list, read_urls, select, validate_url

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"


def test_our_format_with_comments_categories_and_bad_lines(tmp_path: Path) -> None:
    f = tmp_path / "list.txt"
    f.write_text(
        "# header comment\n"
        "https://www.linkedin.com/  SOCI  # seed\n"
        "\n"
        "ftp://example.org/\n"
        "http://ok.lab.test/\n"
        "https://a.test/ X Y\n",
        encoding="utf-8",
    )
    items = list(read_list(f))
    assert items[0] == Target("https://www.linkedin.com/", "SOCI", str(f), 2)
    assert isinstance(items[1], BadLine) and items[1].line == 4 and "scheme" in items[1].reason
    assert items[2] == Target("http://ok.lab.test/", "", str(f), 5)
    assert isinstance(items[3], BadLine) and items[3].line == 6
    assert str(items[1]).startswith(f"{f}:4: ")


def test_citizenlab_csv_real_list() -> None:
    path = SHARED / "data" / "test-lists" / "ru.csv"
    items = list(read_list(path))
    targets = [i for i in items if isinstance(i, Target)]
    assert len(targets) > 100
    assert all(t.url.startswith(("http://", "https://")) for t in targets)
    assert all(t.category_code for t in targets)
    # line numbers point into the file (header is line 1)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert targets[0].line >= 2 and lines[targets[0].line - 1].startswith(targets[0].url)


def test_citizenlab_malformed_row(tmp_path: Path) -> None:
    f = tmp_path / "cl.csv"
    f.write_text(
        "url,category_code,category_description,date_added,source,notes\n"
        "https://a.test/,NEWS,News Media,2020-01-01,x,\n"
        "https://b.test/,NEWS\n"
        "not a url,NEWS,News Media,2020-01-01,x,\n",
        encoding="utf-8",
    )
    items = list(read_list(f))
    assert items[0] == Target("https://a.test/", "NEWS", str(f), 2)
    assert isinstance(items[1], BadLine) and items[1].line == 3
    assert isinstance(items[2], BadLine) and items[2].line == 4


def test_select_category_and_limit() -> None:
    urls = [f"https://s{i}.test/" for i in range(10)]
    items = list(select(read_urls(urls + ["bad"]), limit=3))
    assert [i.url for i in items if isinstance(i, Target)] == urls[:3]


@given(st.text(max_size=200))
def test_validate_url_is_total(text: str) -> None:
    why = validate_url(text)
    assert why is None or isinstance(why, str)
