"""bench/lib/tune_lines.py OUT PREFIX MODEL VERIFY [PREFIX MODEL VERIFY ...]

The `bench:` lines of dure tune runs (bench/run.d/tune.sh,
bench/run.d/tune_multinode.sh), each from a sweep's model (tune.json) and its
--verify (verify.json), names starting with PREFIX; all of them as JSON in OUT:
  PREFIX_fit_worst_error                 the worst fit error, against the tolerance
  PREFIX_verify_F_lowest_speedup         family F's emitted settings against the
                                         defaults, lowest where they differ (>= 1.0)
  PREFIX_verify_F_changed_lowest_speedup the same where they changed the choice
                                         (target >= 1.2), and each such size
  PREFIX_verify_F_segment_gain           where the ring's segment alone changed
                                         it: default time / emitted time summed
                                         over those sizes (target >= 1.1, the
                                         probe's), its lowest, and each such size
  PREFIX_verify_F_noise_floor_{lowest,highest}  sizes where the emitted setting is
                                         the default's own: A/A, the run's noise floor
  PREFIX_ring_segment_SEG                with --ring-segments: the segment the sweep
                                         chose, its probe time against the first's
"""
import json
import sys


def size_lines(fam, family, rows, segment_only):
    """A line per size where family's emitted setting changed the choice, by
    whether the ring's segment alone changed it."""
    return [("%s_%s_%d" % (fam, x["collective"], x["bytes"]), x["speedup"], "x",
             "default " + x["default"], 1.0, "x")
            for x in rows
            if x["family"] == family and x["changed"] and x["segment_only"] == segment_only]


def lines_of(prefix, model, verify):
    lines = []
    worst = max(s["fit"]["worst_error"] for s in model["series"])
    tol = model["sweep"]["tolerance"]
    lines.append((prefix + "_fit_worst_error", 100 * worst, "%", "tolerance", 100 * tol, "%"))
    probe = model.get("ring_segment_probe")
    if probe and probe["sizes"]:
        segs = {s["bytes"]: s["time_s"] for s in probe["segments"]}
        first = probe["segments"][0]["bytes"]
        chosen = model["ring_segment_bytes"]
        lines.append(("%s_ring_segment_%dK" % (prefix, chosen >> 10), 1e3 * segs[chosen], "ms",
                      "%dK" % (first >> 10), 1e3 * segs[first], "ms"))
    for v in verify["verdicts"]:
        fam = prefix + "_verify_" + v["family"]
        if v["changed"]:
            lo = v["lowest_speedup"]
            lines.append((fam + "_lowest_speedup", lo, "x", "defaults", 1.0, "x"))
            lines.append((fam + "_changed_lowest_speedup", lo, "x", "target", 1.2, "x"))
            lines += size_lines(fam, v["family"], verify["rows"], False)
        if v["segment_changed"]:
            lines.append((fam + "_segment_gain", v["segment_gain"], "x", "target", 1.1, "x"))
            lines.append((fam + "_segment_lowest_speedup", v["segment_lowest_speedup"], "x",
                          "defaults", 1.0, "x"))
            lines += size_lines(fam, v["family"], verify["rows"], True)
        if v["identical"]:
            for end in ("lowest", "highest"):
                lines.append(("%s_noise_floor_%s" % (fam, end), v["noise_floor"][end],
                              "x", "identical", 1.0, "x"))
    return lines


def main(argv):
    if len(argv) < 5 or (len(argv) - 2) % 3:
        sys.exit("usage: tune_lines.py OUT PREFIX MODEL VERIFY [PREFIX MODEL VERIFY ...]")
    out = []
    for k in range(2, len(argv), 3):
        model = json.load(open(argv[k + 1]))
        verify = json.load(open(argv[k + 2]))
        for name, v, unit, peer, pv, punit in lines_of(argv[k], model, verify):
            ratio = v / pv if pv else 0.0
            print("bench: %s: %.2f %s (%s: %.2f %s, ratio %.2f)"
                  % (name, v, unit, peer, pv, punit, ratio))
            out.append({"name": name, "value": round(v, 4), "unit": unit, "peer": peer,
                        "peer_value": pv, "ratio": round(ratio, 4)})
    json.dump(out, open(argv[1], "w"), indent=1)


main(sys.argv)
