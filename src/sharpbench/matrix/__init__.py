"""Response matrices (models x items), the one reader of matrices and item tables, and their builders."""

from sharpbench.matrix.core import MatrixError, ResponseMatrix
from sharpbench.matrix.io import read_matrix, write_matrix
from sharpbench.matrix.items import ITEM_ID_COLUMNS, attach_item_meta, read_item_table
from sharpbench.matrix.lmeval import from_lmeval_samples, read_lmeval_samples
from sharpbench.matrix.summary import MatrixSummary, summarize

__all__ = [
    "MatrixError", "ResponseMatrix", "read_matrix", "write_matrix", "read_item_table", "attach_item_meta",
    "ITEM_ID_COLUMNS", "from_lmeval_samples", "read_lmeval_samples", "MatrixSummary", "summarize",
]
