"""What each FAT chapter notebook must glue (key -> check on the value); read by test_book.py."""

from fatlib.core.paper import fat_row

_DOREFA = fat_row("DoReFa-Net", "ImageNet", table="fat_table2")  # the paper's numbers on the Fig. 8 page


def _pct(v):
    return isinstance(v, (int, float)) and 0.0 <= v <= 100.0


def _figure(v):
    return "image/png" in v


def _verdict(v):
    return v in ("holds", "does not hold", "inconclusive")


def _verdict_or_not_run(v):
    return v in ("holds", "does not hold", "inconclusive", "not run")


def _pct_or_not_run(v):
    return v == "not run" or _pct(v)


GLUED: dict[str, dict] = {
    "fat-table1-fig03-sat-channel-stuck": {
        "t1_fig03": _figure,
        "t1_error_free": _pct,
        "t1_min": _pct,
        "t1_faults": lambda v: v > 0,
        "t1_worst_layer": lambda v: v in range(8),
        "t1_claim_0": _verdict,
        "t1_claim_1": _verdict,
        "t1_claim_2": _verdict,
        # the paper's numbers quoted in the prose, read from its Table I / II (golden values)
        "t1_paper_min": lambda v: v == 50.83,
        "t1_paper_worst_layer": lambda v: v == 1,
        "t1_paper_worst_value": lambda v: v == "+1",
        "t1_paper_error_free": lambda v: v == 84.57,
        # FAT §V's training length and CIFAR-10's test set (fatlib/core/paper_tables/quotes.csv)
        "t1_paper_epochs": lambda v: v == 1000,
        "t1_paper_test_images": lambda v: v == 10000,
    },
    "fat-fig06-method1": {
        "fig06_figure": _figure,
        "fig06_sat_min": _pct,
        "fig06_fat_min_best": _pct,
        "fig06_claim_0": _verdict,
        "fig06_claim_3": _verdict,
        "fig06_paper_sat_min": lambda v: v == 50.83,
    },
    "fat-fig07-method2": {
        "fig07_figure": _figure,
        "fig07_sat_min": _pct,
        "fig07_fat_min_best": _pct,
        "fig07_claim_0": _verdict,
        "fig07_claim_3": _verdict,
        "fig07_paper_sat_min": lambda v: v == 50.83,
    },
    "fat-table2-sat-vs-fat": {
        "t2_figure": _figure,
        "t2_rows_run": lambda v: v >= 6,
        "t2_rows_total": lambda v: v == 12,
        "t2_claim_0": _verdict,
        "t2_claim_1": _verdict,
        "t2_claim_2": _verdict,
        # the datasets synthetic stand-ins replaced ("none" where every dataset was found)
        "t2_stand_ins": lambda v: isinstance(v, str) and v != "",
    },
    "fat-fig08-imagenet": {
        "fig08_figure": _figure,
        "fig08_table2_figure": _figure,
        "fig08_status": lambda v: v == "ok" or v.startswith("not run: "),
        "fig08_sat_min": _pct_or_not_run,
        "fig08_fat_min_best": _pct_or_not_run,
        "fig08_claim_0": _verdict_or_not_run,
        "fig08_claim_1": _verdict_or_not_run,
        "fig08_claim_2": _verdict_or_not_run,
        **{
            f"fig08_paper_{g}_{q}": (lambda v, g=g, q=q: v == float(_DOREFA[f"{g}_{q}"]))
            for g in ("sat", "fat")
            for q in ("min", "error_free")
        },
    },
    "fat-fig09-selective-tmr": {
        "paper_fat_fig9_target_error": lambda v: v == 13.84,
        "paper_fat_fig9_sat_channels": lambda v: v == 278,
        "paper_fat_fig9_fat_channels": lambda v: v == 2,
        "fig09_target_error": lambda v: v == 13.84,  # TARGET_ERROR = 0: the paper's target
        "fig09_sat_channels_to_match_fat_text": lambda v: v == "–" or str(v).isdigit(),
        "fig09_figure": _figure,
        "fig09_claim_0": _verdict,
        "fig09_claim_1": _verdict,
    },
    "fat-table3-fig10-dropout2d": {
        "t3_paper_fat_min": lambda v: v == 81.26,
        "t3_paper_d2d_min": lambda v: v == 80.14,
        # FAT Table III: Dropout2D beats FAT in error-free accuracy in 2 of 5 networks, in minimum in 4
        "t3_paper_networks": lambda v: v == 5,
        "t3_paper_d2d_better_error_free": lambda v: v == 2,
        "t3_paper_d2d_better_min": lambda v: v == 4,
        "t3_figure": _figure,
        "t3_fig10": _figure,
        "t3_rows_run": lambda v: v == 5,
        "t3_claim_0": _verdict,
        "t3_claim_1": _verdict,
    },
    "fat-table4-pixel-stuck": {
        "t4_figure": _figure,
        "t4_rows_run": lambda v: v == 3,
        "t4_claim_0": _verdict,
        "t4_claim_1": _verdict,
    },
    "fat-export-qonnx": {
        "export_label": lambda v: v == "CNVW1A1 FAT p=5%",
        "export_nodes_total": lambda v: v > 20,
        "export_weight_quantizers": lambda v: v == 9,  # 6 conv + 3 FC layers
        "export_activation_quantizers": lambda v: v == 8,  # sites 0-7
        "export_same_predictions": lambda v: v == 100.0,
        "export_max_logit_difference": lambda v: 0.0 <= v < 1e-3,
        "export_faults_total": lambda v: v == 20,  # smoke: 10 channel + 10 pixel faults
        "export_faults_agreeing": lambda v: v == 20,  # every one
    },
}
