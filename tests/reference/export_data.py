"""Write the public competing-risks data sets the reference values are computed on (run once, with the test
extra installed): bmt.csv and cgvhd.csv from scikit-survival (`sksurv.datasets.load_bmt`, `load_cgvhd`)."""

from pathlib import Path

from sksurv.datasets import load_bmt, load_cgvhd

HERE = Path(__file__).resolve().parent

X, y = load_bmt()
X.assign(ftime=y["ftime"], status=y["status"]).to_csv(HERE / "bmt.csv", index=False)
X, y = load_cgvhd()
X.assign(ftime=y["ftime"], status=y["status"]).to_csv(HERE / "cgvhd.csv", index=False)
