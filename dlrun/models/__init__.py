"""Plain nn.Modules with typed keyword arguments; they never see a config object."""
