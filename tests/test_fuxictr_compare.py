"""benchmarks/fuxictr_compare.py: the libfm -> FuxiCTR CSV conversion (no torch needed)."""

import importlib.util
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
spec = importlib.util.spec_from_file_location("fuxictr_compare", BENCHMARKS / "fuxictr_compare.py")
fuxictr_compare = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fuxictr_compare)


def test_libfm_rows_become_one_string_id_column_per_field(tmp_path):
    src = tmp_path / "tiny.libfm"
    src.write_text(
        "-1 451:1 4149:1 5041:1 5046:1 5053:1 5055:1 5058:1 5060:1 5069:1 5150:1\n"
        "\n"
        "1 0:1 957:1 5039:1 5052:1 5054:1 5057:1 5059:1 5068:1 5148:1 5381:1\n"
    )
    dst = tmp_path / "tiny.csv"
    assert fuxictr_compare.libfm_to_csv(src, dst) == 2
    assert dst.read_text().splitlines() == [
        "label,user,item,daytime,weekday,isweekend,homework,cost,weather,country,city",
        "0,451,4149,5041,5046,5053,5055,5058,5060,5069,5150",
        "1,0,957,5039,5052,5054,5057,5059,5068,5148,5381",
    ]


def test_libfm_row_with_a_missing_field_is_refused(tmp_path):
    src = tmp_path / "bad.libfm"
    src.write_text("1 0:1 957:1\n")
    with pytest.raises(ValueError, match="bad.libfm:1: 2 features"):
        fuxictr_compare.libfm_to_csv(src, tmp_path / "bad.csv")
