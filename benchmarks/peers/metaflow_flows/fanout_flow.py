"""1 -> 20 foreach branches sleeping 0.5 s -> join (Metaflow needs an end step after it)."""

import time

from metaflow import FlowSpec, step

FANOUT, NAP_SECONDS = 20, 0.5


class FanoutFlow(FlowSpec):
    @step
    def start(self):
        self.x = 0
        self.items = list(range(FANOUT))
        self.next(self.nap, foreach="items")

    @step
    def nap(self):
        time.sleep(NAP_SECONDS)
        self.value = self.x + self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(branch.value for branch in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    FanoutFlow()
