"""Pipeline placement and in-flight micro-batches per schedule."""

from __future__ import annotations

from memory_cases import mixtral

from moesim.memory import in_flight, interleaved_in_flight, rank_chunks


def test_interleaved_warmup_count_matches_megatron():
    # Megatron interleaved 1F1B: (p - i - 1) * 2 + (v - 1) * p warm-up forwards, + 1 alive at
    # the first backward. p 4, v 8: stage 0 -> 6 + 28 + 1 = 35 chunks; stage 3 -> 0 + 28 + 1 = 29.
    for i, want in enumerate([35, 33, 31, 29]):
        assert sum(interleaved_in_flight(4, 8, 16, i)) == want
    # Forwards walk chunks in groups of p micro-batches: 35 = 8 groups of 4 (chunks 0..7 get 4,
    # chunk 0 gets the next 3): [4+3, 4, 4, 4, 4, 4, 4, 4].
    assert interleaved_in_flight(4, 8, 16, 0) == [7, 4, 4, 4, 4, 4, 4, 4]


def test_interleaved_count_is_capped_by_all_micro_batches():
    assert sum(interleaved_in_flight(4, 2, 1, 0)) == 2  # m * v


def test_1f1b_stage_i_holds_p_minus_i():
    s = mixtral("parallelism.pipeline_schedule={kind: 1f1b}")
    assert [in_flight(s, r) for r in range(4)] == [[4.0], [3.0], [2.0], [1.0]]


def test_gpipe_holds_all_micro_batches():
    s = mixtral("parallelism.pipeline_schedule={kind: gpipe}")
    assert in_flight(s, 0) == [16.0]  # m = 256 / (DP 16 x MBS 1)


def test_dualpipe_holds_p_plus_1_and_two_stages():
    # DSV3 Table 2: DualPipe keeps 2x parameters and PP + 1 micro-batches of activations.
    s = mixtral("parallelism.pipeline_schedule={kind: dualpipe}")
    for r in range(4):
        assert sum(in_flight(s, r)) == 4 + 1
        chunks = rank_chunks(32, s.parallelism, r)
        assert [c.index for c in chunks] == [r, 3 - r]


def test_interleaved_places_chunk_c_on_rank_c_mod_p():
    chunks = rank_chunks(32, mixtral().parallelism, 1)
    assert [c.index for c in chunks] == [1, 5, 9, 13, 17, 21, 25, 29]
    assert [list(c.layers) for c in chunks[:2]] == [[1], [5]]
