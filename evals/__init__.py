"""Evaluation of retrieval and answers on gold question sets."""
