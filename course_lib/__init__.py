"""course_lib: the tested library behind the course "From One Neuron to GPT".

Every notebook imports what it reuses from here, so nothing is pasted twice. The
first line of each module's docstring says which day introduces it.
"""

from course_lib.config import fast_mode, pick

__version__ = "0.1.0"

__all__ = ["__version__", "fast_mode", "pick"]
