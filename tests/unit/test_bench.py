"""tools/bench.py's reading of hey's summary (no lab)."""

import importlib.util
import sys
from pathlib import Path

import pytest

_TOOLS = Path(__file__).resolve().parents[2] / "tools"
sys.path.insert(0, str(_TOOLS))  # as `python tools/bench.py` runs it: tools/lab_inventory.py beside it
_SPEC = importlib.util.spec_from_file_location("bench", _TOOLS / "bench.py")
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)

HEY = """
Summary:
  Total:\t8.0123 secs
  Requests/sec:\t129.8000

Latency distribution:
  10% in 0.0201 secs
  50% in 0.0297 secs
  99% in 0.0620 secs

Status code distribution:
  [202]\t1030 responses
  [503]\t10 responses
"""


def test_parse_hey_reads_rate_percentiles_and_statuses():
    row = bench.parse_hey(HEY)
    assert row["rps"] == pytest.approx(129.8)
    assert row["p50_ms"] == pytest.approx(29.7)
    assert row["p99_ms"] == pytest.approx(62.0)
    assert row["responses"] == 1040
    assert row["non_2xx"] == 10


def test_parse_hey_refuses_other_output():
    with pytest.raises(ValueError, match="Requests/sec"):
        bench.parse_hey("Error: connection refused")
