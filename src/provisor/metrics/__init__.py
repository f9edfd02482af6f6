"""provisor's own metrics: the instruments, their multi-process files and their exposition."""
