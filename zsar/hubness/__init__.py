"""Hubness: k-occurrence measures and hubness reducers.

``measures`` computes exact, chunked k-nearest-neighbour lists and the k-occurrence N_k
with its statistics (skewness, hub / antihub occurrence, Robin Hood index, Gini);
``reducers`` holds scikit-learn style estimators that correct score matrices (CSLS, mutual
proximity, local scaling, NICDM, DisSimLocal, inverted softmax, querybank normalisation).
"""

from zsar.hubness.measures import (
    HubnessReport,
    antihub_occurrence,
    gini_coefficient,
    hub_occurrence,
    hubness_from_scores,
    hubness_report,
    k_occurrence,
    knn_from_embeddings,
    knn_from_scores,
    report_from_k_occurrence,
    robinhood_index,
    skewness,
)
from zsar.hubness.reducers import (
    CSLS,
    NICDM,
    REDUCERS,
    SQUARE_ONLY,
    DisSimLocal,
    InvertedSoftmax,
    LocalScaling,
    MutualProximity,
    QueryBankNorm,
    make_reducer,
)

__all__ = [
    "CSLS", "NICDM", "REDUCERS", "DisSimLocal", "HubnessReport", "InvertedSoftmax",
    "LocalScaling", "MutualProximity", "QueryBankNorm", "SQUARE_ONLY", "antihub_occurrence",
    "gini_coefficient", "hub_occurrence", "hubness_from_scores", "hubness_report",
    "k_occurrence", "knn_from_embeddings", "knn_from_scores", "make_reducer",
    "report_from_k_occurrence", "robinhood_index", "skewness",
]
