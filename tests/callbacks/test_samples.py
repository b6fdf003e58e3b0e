"""Samples carry the gold answer, the reward components and a truncation flag, at the step
numbers of the scalars (optimizer steps done), for training and validation."""

from types import SimpleNamespace

from rlad_pl.callbacks.samples import SampleLogger, gold_answer, sample_markdown


class Writer:
    def __init__(self):
        self.texts = []

    def add_text(self, tag, text, step):
        self.texts.append((tag, text, step))


def trainer_at(step):
    writer = Writer()
    return SimpleNamespace(global_step=step, is_global_zero=True,
                           loggers=[SimpleNamespace(experiment=writer)]), writer


KK = {"names": ["Ann", "Bob"], "solution": [True, False]}


def test_gold_answer_per_task():
    assert gold_answer(KK) == "Ann is a knight, Bob is a knave"
    assert gold_answer({"question": "1+1", "answer": "2"}) == "2"


def test_markdown_has_components_gold_and_truncation():
    text = sample_markdown(1, prompt="p", completion="<think>x", record=KK,
                           score={"format": -1.0, "answer": 0.0, "total": -1.0,
                                  "correct": False}, truncated=True)
    assert "wrong, reward -1.00 (format -1.00, answer +0.00)" in text
    assert "TRUNCATED" in text and "Ann is a knight" in text


def test_train_samples_at_multiples_of_n():
    logger = SampleLogger(every_n_steps=3)
    module = SimpleNamespace(last_samples=[{
        "prompt": "p", "completion": "c", "reward": 1.0, "correct": True, "record": KK,
        "score": {"format": 1.0, "answer": 0.0, "total": 1.0, "correct": True},
        "truncated": False}])
    steps = []
    for step in range(1, 7):
        trainer, writer = trainer_at(step)
        logger.on_train_batch_end(trainer, module, None, None, step - 1)
        steps += [s for _, _, s in writer.texts]
    assert steps == [3, 6]


def test_validation_samples_first_batch_only():
    logger = SampleLogger(count=2)
    task = SimpleNamespace(score=lambda text, record: {"format": 1.0, "answer": 2.0,
                                                       "total": 3.0, "correct": True})
    module = SimpleNamespace(task=task)
    outputs = {"greedy_texts": ["a", "b", "c"], "records": [KK] * 3,
               "greedy_truncated": [False, True, False]}
    batch = {"prompts": ["p1", "p2", "p3"]}
    trainer, writer = trainer_at(50)
    logger.on_validation_batch_end(trainer, module, outputs, batch, 0)
    logger.on_validation_batch_end(trainer, module, outputs, batch, 1)
    assert len(writer.texts) == 1
    tag, text, step = writer.texts[0]
    assert tag == "samples/val" and step == 50
    assert text.count("**#") == 2 and "TRUNCATED" in text and "p2" in text
