"""The released script's sample mode: predict N examples in file order, print them.

``run_inference --num_inference_samples N [--num_skip_samples K]`` runs no
Beam pipeline: like the released script it reads the shards in order, skips
K examples and predicts the next N, here in batches of the handler's size.
"""

from typing import Iterator, List, Tuple

from transforms.dataset import tfrecord_io


def iter_examples(paths: List[str]) -> Iterator[Tuple[str, int, bytes]]:
    """``(shard, index, record)`` of every record of ``paths``, in file order.

    Raises:
        CorruptShardError: a shard cannot be read past a record.
    """
    for path in paths:
        for index, record in enumerate(tfrecord_io.read_shard(path)):
            yield path, index, record


def sample_predictions(paths: List[str], handler, num_samples: int,
                       num_skip: int = 0) -> Iterator[Tuple[str, int, object]]:
    """``(shard, index, prediction or DecodeFailure)`` for ``num_samples`` examples
    in file order after skipping ``num_skip``, run in batches of the handler's size.

    A generator: each batch's results come as soon as they are predicted, so a
    ``CorruptShardError`` met later leaves the earlier ones with the caller.

    Args:
        paths: the shards, in the order they are read.
        handler: a ``SoilMoistureModelHandler`` (loaded here, closed at the end).
        num_samples: examples to predict; num_skip: examples to skip first.

    Raises:
        CorruptShardError: a shard cannot be read past a record (after the
            predictions of what came before it).
    """
    model = handler.load_model()
    batch: List[Tuple[str, int, bytes]] = []

    def flush():
        results = handler.run_inference([r for _, _, r in batch], model)
        done = [(s, i, result.inference) for (s, i, _), result in zip(batch, results)]
        batch.clear()
        return done

    try:
        chosen = 0
        for position, item in enumerate(iter_examples(paths)):
            if chosen == num_samples:
                break
            if position < num_skip:
                continue
            batch.append(item)
            chosen += 1
            if len(batch) == handler.batch_size:
                yield from flush()
        if batch:
            yield from flush()
    except tfrecord_io.CorruptShardError:
        if batch:  # predict what was read before the damage, then report it
            yield from flush()
        raise
    finally:
        model.close()
