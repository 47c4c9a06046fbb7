"""A 100 MB array or a 1e6 x 10 DataFrame made in `start` and summed in `end`.

Every Metaflow step is its own process, so the producer cannot return an object built before
the run: `start` builds it (the workload reports that build time separately).
"""

from metaflow import FlowSpec, Parameter, step
from workload_common import consume, make_data


class ArtifactFlow(FlowSpec):
    kind = Parameter("kind", default="numpy", help="numpy or pandas")

    @step
    def start(self):
        self.data = make_data(self.kind)
        self.next(self.end)

    @step
    def end(self):
        self.total = consume(self.data)


if __name__ == "__main__":
    ArtifactFlow()
