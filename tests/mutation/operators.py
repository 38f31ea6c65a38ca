"""The mutant cosmic-ray does not make and our promises need most: a call statement left out
(`await message.ack()`, `await self.store.save(...)`, `await asyncio.sleep(pause)`)."""

from __future__ import annotations

from cosmic_ray.operators.operator import Example, Operator
from parso.python.tree import Keyword

QUIET = {"log", "logger", "logging", "print"}


class RemoveCallStatement(Operator):
    """Replace a statement that is only a call, awaited or not, with `pass`."""

    def mutation_positions(self, node):
        if node.type == "atom_expr" and node.parent.type in ("simple_stmt", "file_input", "suite"):
            trailer = node.children[-1]
            first = node.children[1] if node.children[0] == "await" else node.children[0]
            # a log line left out changes nothing a test should notice
            if trailer.type == "trailer" and trailer.children[0] == "(" and first.get_code().strip() not in QUIET:
                yield (node.start_pos, node.end_pos)

    def mutate(self, node, index):
        return Keyword("pass", node.start_pos, prefix=node.get_first_leaf().prefix)

    @classmethod
    def examples(cls):
        return (Example("await message.ack()\n", "pass\n"), Example("save(state)\n", "pass\n"))


class Provider:
    """An operator provider as cosmic-ray's plugins expect one (a mapping of names to classes)."""

    _operators = {"RemoveCallStatement": RemoveCallStatement}

    def __iter__(self):
        return iter(self._operators)

    def __getitem__(self, name):
        return self._operators[name]
