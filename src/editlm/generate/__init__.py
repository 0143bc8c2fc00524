"""Generation: sampling diffs and edit sequences from models, fast engines, reranking, repair."""
