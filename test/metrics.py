#!/usr/bin/python3
"""metrics.py - read Prometheus text exposition on stdin with Prometheus'
own Python parser (python3-prometheus-client) and print each sample as
NAME|LABEL=VALUE,...|VALUE (labels sorted), one per line, for the bats
tests to compare with the VMDB.  Exits 1 on anything the parser refuses,
or on a family without TYPE, a counter not named _total, or a histogram
whose buckets are not cumulative."""
import sys

from prometheus_client.parser import text_string_to_metric_families

text = sys.stdin.read()
typed = {l.split()[2] for l in text.splitlines() if l.startswith("# TYPE ")}
out = []
try:
    for fam in text_string_to_metric_families(text):
        if fam.name not in typed and fam.name + "_total" not in typed:
            sys.exit(f"metrics.py: family {fam.name} has no TYPE line")
        last = {}
        for s in fam.samples:
            if fam.type == "counter" and not s.name.endswith(("_total", "_created")):
                sys.exit(f"metrics.py: counter sample {s.name} is not named _total")
            if s.name.endswith("_bucket"):
                if s.value < last.get(s.name, 0):
                    sys.exit(f"metrics.py: {s.name} buckets are not cumulative")
                last[s.name] = s.value
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            v = int(s.value) if float(s.value).is_integer() else s.value
            out.append(f"{s.name}|{labels}|{v}")
except ValueError as e:
    sys.exit(f"metrics.py: not Prometheus text exposition: {e}")
print("\n".join(out))
