"""What each FAT chapter notebook must glue (key -> check on the value); read by test_book.py."""

def _pct(v):
    return isinstance(v, (int, float)) and 0.0 <= v <= 100.0


def _figure(v):
    return "image/png" in v


def _verdict(v):
    return v in ("holds", "does not hold")


def _verdict_or_not_run(v):
    return v in ("holds", "does not hold", "not run")


def _pct_or_not_run(v):
    return v == "not run" or _pct(v)


GLUED: dict[str, dict] = {
    "fat-table1-fig03-sat-channel-stuck": {
        "t1_fig03": _figure, "t1_error_free": _pct, "t1_min": _pct, "t1_faults": lambda v: v > 0,
        "t1_worst_layer": lambda v: v in range(8), "t1_claim_0": _verdict, "t1_claim_1": _verdict,
        "t1_claim_2": _verdict,
    },
    "fat-fig06-method1": {
        "fig06_figure": _figure, "fig06_sat_min": _pct, "fig06_fat_min_best": _pct,
        "fig06_claim_0": _verdict, "fig06_claim_3": _verdict,
    },
    "fat-fig07-method2": {
        "fig07_figure": _figure, "fig07_sat_min": _pct, "fig07_fat_min_best": _pct,
        "fig07_claim_0": _verdict, "fig07_claim_3": _verdict,
    },
    "fat-table2-sat-vs-fat": {
        "t2_figure": _figure, "t2_rows_run": lambda v: v >= 6, "t2_rows_total": lambda v: v == 12,
        "t2_claim_0": _verdict, "t2_claim_1": _verdict, "t2_claim_2": _verdict,
    },
    "fat-fig08-imagenet": {
        "fig08_figure": _figure, "fig08_table2_figure": _figure,
        "fig08_status": lambda v: v == "ok" or v.startswith("not run: "),
        "fig08_sat_min": _pct_or_not_run, "fig08_fat_min_best": _pct_or_not_run,
        "fig08_claim_0": _verdict_or_not_run, "fig08_claim_1": _verdict_or_not_run,
        "fig08_claim_2": _verdict_or_not_run,
    },
    "fat-fig09-selective-tmr": {
        "fig09_figure": _figure, "fig09_claim_0": _verdict, "fig09_claim_1": _verdict,
    },
    "fat-table3-fig10-dropout2d": {
        "t3_figure": _figure, "t3_fig10": _figure, "t3_rows_run": lambda v: v == 5,
        "t3_claim_0": _verdict, "t3_claim_1": _verdict,
    },
    "fat-table4-pixel-stuck": {
        "t4_figure": _figure, "t4_rows_run": lambda v: v == 3, "t4_claim_0": _verdict,
        "t4_claim_1": _verdict,
    },
}
