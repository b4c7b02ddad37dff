"""A TF-IDF + logistic-regression baseline, so the UI shows what fine-tuning adds."""

from __future__ import annotations

from mlops.data import ClassificationData
from mlops.metrics import classification_scores


def tfidf_baseline(data: ClassificationData, seed: int) -> dict[str, float]:
    """`baseline_test_f1` etc.: word 1-2-gram TF-IDF features and a logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LogisticRegression(max_iter=1000, random_state=seed))
    model.fit(data.train.texts, data.train.labels)
    scores = {}
    for split in ("validation", "test"):
        predictions = model.predict(data.split(split).texts).tolist()
        scores.update(classification_scores(predictions, data.split(split).labels, f"baseline_{split}"))
    return scores
