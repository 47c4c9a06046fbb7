"""The smallest Metaflow flow (Metaflow requires a start and an end step): `--help` timing and
the many runs the client queries read."""

from metaflow import FlowSpec, step


class PingFlow(FlowSpec):
    @step
    def start(self):
        self.x = 0
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    PingFlow()
