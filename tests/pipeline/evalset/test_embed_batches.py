"""Token-budget batching: every row embedded once, in its own place, batches within budget."""

import numpy as np

from pipeline.evalset.embed import EmbedConfig, embed_texts, load_encoder, token_batches


def test_token_batches_cover_every_row_once_within_the_budget():
    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 300, size=1000)
    batches = token_batches(lengths, tokens_per_batch=4096, max_rows=128)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(1000))
    for batch in batches:
        assert len(batch) <= 128
        assert len(batch) == 1 or len(batch) * lengths[batch].max() <= 4096


def test_long_rows_go_in_small_batches_and_short_rows_in_full_ones():
    lengths = np.array([256, 10] * 300)
    sizes = [len(b) for b in token_batches(lengths, tokens_per_batch=4096, max_rows=128)]
    assert sizes == [16] * 18 + [12 + 4] + [128] * 2 + [40]


def test_a_row_longer_than_the_budget_gets_a_batch_of_its_own():
    batches = token_batches(np.array([5000, 3, 3]), tokens_per_batch=4096, max_rows=128)
    assert [b.tolist() for b in batches] == [[0], [1, 2]]


def test_vectors_come_back_in_input_order():
    texts = [
        "hi",
        "Write a long essay on the history of the printing press in Europe. " * 30,
        "What is 2 + 2?",
        "Explain photosynthesis to a ten-year-old, with an example from a garden. " * 5,
        "Translate 'good morning' into French.",
    ]
    config = EmbedConfig(dtype="float32", tokens_per_batch=300, batch_size=2)
    vectors = embed_texts(texts, config)
    encoder = load_encoder(config.model, config.dtype, config.max_seq_length)
    plain = encoder.encode(texts, normalize_embeddings=True)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert (np.sum(vectors * plain, axis=1) >= 0.9999).all()
