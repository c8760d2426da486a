"""Exports a random forest to ONNX, for timing the load of a larger model.

    python bench/forest.py bench/forest-1mb.onnx 25     # 25 trees: about 1 MB

Needs scikit-learn and skl2onnx (tests/fixtures/models/requirements.txt pins them).
"""
import sys
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from skl2onnx import to_onnx
X, y = make_classification(n_samples=4000, n_features=20, n_informative=10, n_classes=3, random_state=0)
X = X.astype("float32")
model = RandomForestClassifier(n_estimators=int(sys.argv[2]), max_depth=12, random_state=0).fit(X, y)
onx = to_onnx(model, X[:1], options={id(model): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3})
open(sys.argv[1], "wb").write(onx.SerializeToString())
