"""PyBullet world, scenes, instructions, expert, success checks, evaluation and the sim bridge node."""
