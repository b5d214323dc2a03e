"""Cell-count checks of plain CSV/TSV tables: small cells fail, zeros go to review, suppressed
cells pass, and a table the checks cannot read fails with its line."""

import time

import pytest

from imaging_workbench.airlock.table_checks import MAX_CELL_FINDINGS, check_count_grid, check_counts

AGE_TABLE = "age_band,sex,patients,mean_hu\n40-49,F,12,-35.5\n50-59,F,4,-20.1\n60-69,F,0,-18.0\n70-79,F,,-10.2\n"


def table(tmp_path, text: str | bytes, name: str = "age.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def by_check(findings):
    return {(f.check, f.severity): f for f in findings}


def test_a_small_cell_fails_naming_its_row_label_column_and_the_minimum(tmp_path):
    findings = check_counts(table(tmp_path, AGE_TABLE), "tables/age.csv", ["patients"], 10)
    small = by_check(findings)[("small-cell", "fail")]
    assert small.file == "tables/age.csv"
    assert small.where == {"row": 2, "label": "50-59", "column": "patients", "line": 3, "value": 4, "min_count": 10}
    assert "row 2 (age_band '50-59'), column 'patients': 4 is a small cell, below the minimum count 10" in small.message


def test_a_zero_goes_to_review_and_a_blank_is_a_suppressed_cell(tmp_path):
    findings = check_counts(table(tmp_path, AGE_TABLE), "age.csv", ["patients"], 10)
    assert [(f.check, f.severity, f.where.get("row")) for f in findings] == [
        ("small-cell", "fail", 2), ("zero-cell", "review", 3)]  # row 4 is blank: suppressed


def test_counts_at_the_minimum_pass_and_only_declared_columns_are_checked(tmp_path):
    text = "site,patients,mean_age\nA,10,3\nB,10.0,4\nC,*,2\nD,NaN,1\n"
    assert check_counts(table(tmp_path, text), "age.csv", ["patients"], 10) == []


@pytest.mark.parametrize("disguised", ["3.0", " 3 ", "+3", "3e0", '"3"'])
def test_a_small_count_written_another_way_still_fails(tmp_path, disguised):
    findings = check_counts(table(tmp_path, f"site,n\nA,{disguised}\n"), "t.csv", ["n"], 10)
    assert [(f.check, f.where["value"]) for f in findings] == [("small-cell", 3)]


@pytest.mark.parametrize("value", ["-4", "2.5", "many", "0x10", "inf"])
def test_a_count_column_holding_something_else_fails_naming_row_and_column(tmp_path, value):
    findings = check_counts(table(tmp_path, f"site,n\nA,20\nB,{value}\n"), "t.csv", ["n"], 10)
    assert [(f.check, f.severity, f.where["row"], f.where["column"]) for f in findings] == [
        ("count-value", "fail", 2, "n")]
    assert f"{value!r} is not a count" in findings[0].message


def test_a_declared_column_that_is_missing_fails_listing_the_columns_present(tmp_path):
    [finding] = check_counts(table(tmp_path, AGE_TABLE), "age.csv", ["patients", "n_cases"], 10)
    assert (finding.check, finding.severity) == ("count-columns", "fail")
    assert "'n_cases' not in the table" in finding.message
    assert "'age_band', 'sex', 'patients', 'mean_hu'" in finding.message


def test_a_table_without_declared_counts_is_left_to_the_checkers_eyes(tmp_path):
    [finding] = check_counts(table(tmp_path, AGE_TABLE), "age.csv", [], 10)
    assert (finding.check, finding.severity) == ("no-count-columns", "review")
    assert "by eye" in finding.message


@pytest.mark.parametrize("content, line, problem", [
    (b"site,n\nA,12\nB\xe9,13\n", 3, "is not UTF-8 text (byte 0xe9 at column 2)"),
    (b"site,n\nA,12\nB,13,14\n", 3, "has 3 field(s) where the header has 2"),
    (b"site,n\nA,\"12\n", 2, "is not valid CSV (unexpected end of data)"),  # the quote opened on line 2
    (b"", 1, "is empty"),
])
def test_an_unreadable_table_fails_naming_the_line(tmp_path, content, line, problem):
    [finding] = check_counts(table(tmp_path, content), "t.csv", ["n"], 10)
    assert (finding.check, finding.severity, finding.where) == ("table-format", "fail", {"line": line})
    assert f"line {line} {problem}" in finding.message


def test_a_tsv_with_a_byte_order_mark_is_read_by_its_tabs(tmp_path):
    path = table(tmp_path, "\ufeffsite\tn\nA\t7\n".encode(), name="t.tsv")
    [finding] = check_counts(path, "tables/t.tsv", ["n"], 10)
    assert (finding.check, finding.where["label"], finding.where["value"]) == ("small-cell", "A", 7)


def test_a_large_table_is_streamed_and_its_findings_capped(tmp_path):
    rows = 100_000
    path = table(tmp_path, "id,n\n" + "".join(f"r{i},{i % 10}\n" for i in range(rows)))
    started = time.perf_counter()
    findings = check_counts(path, "big.csv", ["n"], 10)
    assert time.perf_counter() - started < 10
    assert len(findings) == MAX_CELL_FINDINGS + 2
    rest = {f.check: f.message for f in findings[MAX_CELL_FINDINGS:]}
    listed_zeros = sum(f.check == "zero-cell" for f in findings[:MAX_CELL_FINDINGS])
    listed_small = MAX_CELL_FINDINGS - listed_zeros
    assert rest == {"small-cell": f"and {rows * 9 // 10 - listed_small} more small cells not listed",
                    "zero-cell": f"and {rows // 10 - listed_zeros} more zero cells not listed"}


def test_a_frequency_table_with_two_header_lines_checks_every_cell(tmp_path):
    # As pandas writes a crosstab over two column variables: the column levels, then the index name.
    path = table(tmp_path, "sex,F,F,M,M\ngrade,g1,g2,g1,g2\nsite,,,,\nA,38,4,47,46\nB,53,55,0,56\n")
    findings = check_count_grid(path, "acro/output_1_0.csv", header_rows=3, label_columns=1, min_count=10)
    assert [(f.check, f.where["row"], f.where["label"], f.where["column"]) for f in findings] == [
        ("small-cell", 1, "A", "F / g2"), ("zero-cell", 2, "B", "M / g1")]


def test_a_minimum_count_below_one_is_refused(tmp_path):
    with pytest.raises(ValueError, match="min_count must be a whole number of at least 1, not 0"):
        check_counts(table(tmp_path, AGE_TABLE), "age.csv", ["patients"], 0)
