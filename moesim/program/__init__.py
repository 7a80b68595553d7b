"""Step programs: each rank class's op DAG and pipeline schedule for one training step."""

from moesim.program.builder import ChunkProgram, StageProgram, StepProgram, build_program

__all__ = ["ChunkProgram", "StageProgram", "StepProgram", "build_program"]
