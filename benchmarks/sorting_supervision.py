"""Sorting supervision: a CNN learns to read 4-digit numbers from their order alone.

The experiment of "Learning with Algorithmic Supervision via Continuous Relaxations" (Petersen et
al., NeurIPS 2021, AlgoVision's ``experiments/train_sort.py``), on data that scikit-learn ships.

Data. scikit-learn's 1797 handwritten 8x8 digits are split, stratified by class, into disjoint
train and test pools (``--test-fraction``). A 4-digit number is four digit images of one pool side
by side, an 8x32 image whose value is the 4-digit number they spell (leading zeros allowed). A set
holds n = 5 numbers with distinct values.

Training. A small network gives every number a scalar score: a convolution with an 8x8 kernel
and stride 8 reads the four digit windows with shared weights, and an MLP turns the four digit
features into the score (``NumberScorer``). Each training set is presented in its true ascending
order; the loss is the expected number of swaps that relaxed bubble sort (beta 8) needs to sort the
scores: zero exactly when the scores are in the true order. The network never sees a digit label
or a value, only which number is larger. Adam, learning rate 10^-3.5, 100 sets per step, as in the
paper's code. ``--engine`` picks who computes the relaxed sort: avcompile (the plain-Python
``src_examples.bubble_sort`` compiled by ``@relax``) or AlgoVision's interpreter running the same
algorithm written in its DSL; ``both`` trains once with each, from the same seed.

Metrics, on a fixed set of test sets (random order within each set), as in the paper's code: with
``pred = argsort(scores)`` and ``true = argsort(values)`` per set,

- exact match (EM): the fraction of sets whose whole ranking is right (``pred == true``
  everywhere);
- element-wise (EW): the fraction of ranks at which the right number stands (``pred == true``
  averaged over sets and ranks);
- EM5: exact match of the ranking of each set's first 5 numbers only (the paper's ``acc_em5``; at
  n = 5 it equals EM).

The figures reported are those at the last step (no model selection on the test split) and, as
the accuracy still moves by about 0.02 between evaluations, the mean exact match of the last five.
Seconds per step are medians over the run: all of a step (drawing the batch, forward, backward,
update) and, of it, the relaxed sort's forward and backward.

Run ``python -m benchmarks.sorting_supervision`` for a full run (25,000 steps: about 8 minutes
with avcompile, 12 with AlgoVision, on one core), with ``--engine both --plot
docs/sorting_supervision.png`` for the README's figures, or ``--steps 50`` for a smoke test.
Across processes: ``torchrun --nproc_per_node=2 -m benchmarks.sorting_supervision --ddp``
(DistributedDataParallel, gloo on CPU, nccl on GPUs): every rank draws the same global batch and
trains on its share of it, so that, dropout aside (each rank draws its own masks), the run equals
a single-process one up to rounding.

The script needs packages that avcompile itself does not: scikit-learn (the digits), tqdm (the
progress bar, unless ``--no-progress``), matplotlib (``--plot``) and algovision (``--engine
algovision`` or ``both``). ``pip install -e '.[bench]'`` installs them all; a run that lacks one
says so before it starts. ``--json`` results are written before the plot is drawn.
"""

import argparse
import dataclasses
import importlib
import json
import os
import statistics
import sys
import time
import warnings

import torch
import torch.distributed as dist
from torch import nn

from avcompile import relax
from benchmarks.common import algovision_bubble_sort
from src_examples.bubble_sort import bubble_sort

ENGINES = ("avcompile", "algovision")
DIGITS = 4
DIGIT_SIZE = 8


@dataclasses.dataclass
class Config:
    """The experiment's settings; the defaults are the full run.

    Example::

        Config(steps=50, eval_every=25)
    """

    steps: int = 25000
    batch: int = 100  # sets per step, over all processes
    n: int = 5  # numbers per set
    beta: float = 8.0
    log_lr: float = -3.5  # Adam's learning rate is 10 ** log_lr
    engine: str = "avcompile"
    eval_every: int = 500
    test_sets: int = 2000
    test_fraction: float = 0.3  # share of the digit images that only the test split uses
    dropout: float = 0.3
    seed: int = 0
    threads: int = 1  # torch threads per process (the network is small: one is fastest)
    device: str = "cpu"


# ---------------------------------------------------------------------------------------------
# Data


@dataclasses.dataclass
class DigitPools:
    """Disjoint train and test pools of 8x8 digit images (values in [0, 1]) and their labels."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


def load_digit_pools(test_fraction=0.3, seed=0):
    """scikit-learn's digits, split by image and stratified by class into train and test pools.

    Example::

        pools = load_digit_pools()
        pools.train_images.shape      # torch.Size([1257, 8, 8])
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32) / 16.0
    labels = torch.tensor(digits.target)
    train, test = train_test_split(
        torch.arange(len(labels)).numpy(),
        test_size=test_fraction,
        random_state=seed,
        stratify=labels.numpy(),
    )
    train, test = torch.as_tensor(train), torch.as_tensor(test)
    return DigitPools(images[train], labels[train], images[test], labels[test])


def sample_sets(images, labels, count, n, generator, in_order):
    """``count`` sets of ``n`` 4-digit numbers with distinct values, built from one digit pool.

    Returns the images ``[count, n, 1, 8, 32]`` and the values ``[count, n]``; ``in_order`` puts
    every set in ascending order of value, otherwise a set's order is random.

    Example::

        pools = load_digit_pools()
        x, values = sample_sets(pools.test_images, pools.test_labels, 10, 5, torch.Generator(),
                                in_order=False)
    """
    place = 10 ** torch.arange(DIGITS - 1, -1, -1)
    index = torch.randint(len(labels), (count, n, DIGITS), generator=generator)
    while True:  # redraw the (rare) sets in which two numbers have the same value
        values = (labels[index] * place).sum(-1)
        repeated = (values.sort(-1).values.diff(dim=-1) == 0).any(-1)
        if not repeated.any():
            break
        index[repeated] = torch.randint(
            len(labels), (int(repeated.sum()), n, DIGITS), generator=generator
        )
    if in_order:
        order = values.argsort(-1)
        index, values = index.gather(1, order[..., None].expand_as(index)), values.gather(1, order)
    x = images[index]  # [count, n, digits, 8, 8]: the digits side by side make an 8x32 image
    x = x.permute(0, 1, 3, 2, 4).reshape(count, n, 1, DIGIT_SIZE, DIGITS * DIGIT_SIZE)
    return x, values


# ---------------------------------------------------------------------------------------------
# Model, relaxed sort, metrics


class NumberScorer(nn.Module):
    """A small convolutional network that maps an 8x32 image of a 4-digit number to one score.

    Its convolution has an 8x8 kernel and stride 8: the four digit windows go through the same
    layers (written as linear layers on the windows, which is the same and faster: 64 -> 128 ->
    32 features, layer norm, ReLU and dropout after each); a two-layer head turns the four digit
    features, in their order, into the score.

    Example::

        NumberScorer()(torch.zeros(7, 1, 8, 32)).shape   # torch.Size([7])
    """

    def __init__(self, channels=128, features=32, hidden=64, dropout=0.3):
        super().__init__()
        self.digit = nn.Sequential(
            nn.Dropout(dropout / 3),
            nn.Linear(DIGIT_SIZE * DIGIT_SIZE, channels),
            nn.LayerNorm(channels),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(channels, features),
            nn.LayerNorm(features),
            nn.ReLU(),
        )
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(DIGITS * features, hidden),
            nn.LayerNorm(hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, x):
        windows = x.view(len(x), DIGIT_SIZE, DIGITS, DIGIT_SIZE).transpose(1, 2)  # [N, 4, 8, 8]
        digits = self.digit(windows.flatten(2))  # [N, 4, features]
        return self.head(digits.flatten(1)).squeeze(-1)


def relaxed_sort(engine, beta, device="cpu"):
    """The relaxed bubble sort of ``engine``: scores ``[B, n]`` to (array, expected swaps ``[B]``).

    Example::

        _, swaps = relaxed_sort("avcompile", 8.0)(torch.tensor([[3.0, 1.0, 2.0]]))   # ~[2.]
    """
    if engine == "avcompile":
        return relax(bubble_sort, beta=beta, backend="auto")
    if engine == "algovision":
        import algovision

        warnings.filterwarnings("ignore", module="algovision")  # its deprecated list indexing
        return algovision_bubble_sort(algovision, beta=beta, device=device)
    raise ValueError(f"unknown engine {engine!r}; choose one of {ENGINES}")


def ranking_accuracy(scores, values):
    """Exact match, element-wise and first-5 exact-match accuracy of ranking by ``scores``.

    ``scores`` and ``values`` are ``[sets, n]``; the module docstring defines the three.

    Example::

        ranking_accuracy(torch.tensor([[0.1, 0.3, 0.2]]), torch.tensor([[1, 3, 2]]))
        # {'em': 1.0, 'ew': 1.0, 'em5': 1.0}
    """
    right = scores.argsort(-1) == values.argsort(-1)
    right5 = scores[:, :5].argsort(-1) == values[:, :5].argsort(-1)
    return {
        "em": right.all(-1).float().mean().item(),
        "ew": right.float().mean().item(),
        "em5": right5.all(-1).float().mean().item(),
    }


@torch.no_grad()
def evaluate(model, x, values, chunk=500):
    """Ranking accuracy of ``model`` on the sets ``x`` (``[sets, n, 1, 8, 32]``)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    scores = torch.cat(
        [model(part.flatten(0, 1).to(device)).view(len(part), -1).cpu() for part in x.split(chunk)]
    )
    model.train(was_training)
    return ranking_accuracy(scores, values)


# ---------------------------------------------------------------------------------------------
# Training


def train(config, rank=0, world_size=1, progress=False, log=print):
    """Train the CNN with the relaxed sort of ``config.engine``; returns the run's history.

    With ``world_size`` > 1 the process group must be initialised: the model is wrapped in
    DistributedDataParallel and each rank trains on its share of every global batch. Only rank 0
    evaluates. The history holds, per step, the loss and the seconds the step took (and, of them,
    the relaxed sort's forward and backward), and per evaluation the test accuracies.

    Example::

        history = train(Config(steps=20, eval_every=10, test_sets=100))
        history["loss"][0], history["evals"][-1]["em"]
    """
    if config.batch % world_size:
        raise ValueError(f"batch {config.batch} does not split evenly over {world_size} processes")
    begin = time.perf_counter()
    device = torch.device(config.device)
    torch.set_num_threads(config.threads)
    pools = load_digit_pools(config.test_fraction, config.seed)
    test_x, test_values = sample_sets(
        pools.test_images,
        pools.test_labels,
        config.test_sets,
        config.n,
        torch.Generator().manual_seed(config.seed + 1),
        in_order=False,
    )
    torch.manual_seed(config.seed)
    model = NumberScorer(dropout=config.dropout).to(device)
    torch.manual_seed(config.seed + 1 + rank)  # every rank draws its own dropout masks
    net = model
    if world_size > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    optimizer = torch.optim.Adam(model.parameters(), lr=10**config.log_lr)
    sort = relaxed_sort(config.engine, config.beta, device)
    data = torch.Generator().manual_seed(config.seed + 2)  # the same draws on every rank
    share = config.batch // world_size
    history = {
        "config": dataclasses.asdict(config),
        "world_size": world_size,
        "loss": [],
        "step_seconds": [],
        "sort_seconds": [],
        "evals": [],
    }
    steps = range(1, config.steps + 1)
    if progress and rank == 0:
        from tqdm import tqdm

        steps = tqdm(steps, desc=f"{config.engine}", unit="step", dynamic_ncols=True)
    for step in steps:
        start = time.perf_counter()
        x, _ = sample_sets(
            pools.train_images, pools.train_labels, config.batch, config.n, data, in_order=True
        )
        x = x[rank * share : (rank + 1) * share].to(device)
        scores = net(x.flatten(0, 1)).view(share, config.n)
        # The sort runs on a detached copy of the scores so that its time can be told apart.
        sort_start = time.perf_counter()
        detached = scores.detach().requires_grad_()
        _, swaps = sort(detached)
        loss = swaps.mean()
        loss.backward()
        sort_seconds = time.perf_counter() - sort_start
        optimizer.zero_grad()
        scores.backward(detached.grad)
        optimizer.step()
        history["step_seconds"].append(time.perf_counter() - start)
        history["sort_seconds"].append(sort_seconds)
        history["loss"].append(loss.item())
        if rank == 0 and (step % config.eval_every == 0 or step == config.steps):
            accuracy = evaluate(model, test_x, test_values)
            history["evals"].append({"step": step, **accuracy})
            if progress:
                steps.set_postfix(loss=f"{loss.item():.3f}", em=f"{accuracy['em']:.3f}")
            else:
                log(
                    f"{config.engine} step {step:5d}  loss {loss.item():.3f}  "
                    f"EM {accuracy['em']:.3f}  EW {accuracy['ew']:.3f}"
                )
    history["parameters"] = model.state_dict()
    history["run_seconds"] = time.perf_counter() - begin
    return history


def summarize(history):
    """The figures of a run: final accuracies, the mean exact match of the last five evaluations,
    median seconds per step (all of it, and the relaxed sort's share), seconds of training steps
    and of the whole run (data, evaluations included)."""
    evals = history["evals"]
    last = evals[-1] if evals else {}
    recent = [e["em"] for e in evals[-5:]]
    return {
        "engine": history["config"]["engine"],
        "steps": history["config"]["steps"],
        "em": last.get("em"),
        "ew": last.get("ew"),
        "em5": last.get("em5"),
        "em_last5": sum(recent) / len(recent) if recent else None,
        "step_s": statistics.median(history["step_seconds"]),
        "sort_s": statistics.median(history["sort_seconds"]),
        "train_s": sum(history["step_seconds"]),
        "run_s": history["run_seconds"],
    }


def plot(histories, path):
    """Save test accuracy against training steps of every run in ``histories`` to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    styles = {"avcompile": "-", "algovision": "--"}
    for history in histories:
        engine = history["config"]["engine"]
        steps = [e["step"] for e in history["evals"]]
        for key, label, color in (("em", "exact match", "C0"), ("ew", "element-wise", "C1")):
            ax.plot(
                steps,
                [e[key] for e in history["evals"]],
                styles.get(engine, ":"),
                color=color,
                label=f"{label} ({engine})",
            )
    config = histories[0]["config"]
    ax.set_xlabel("training step")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title(
        f"Sorting supervision, 4-digit numbers from sklearn digits, n = {config['n']}", fontsize=10
    )
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Optional packages

INSTALL = "pip install -e '.[bench]'"
# The import name of each optional package, and its name for pip.
PIP_NAMES = {
    "sklearn": "scikit-learn",
    "tqdm": "tqdm",
    "matplotlib": "matplotlib",
    "algovision": "algovision",
}


def needed_packages(engines, progress, plot):
    """The optional packages a run needs: {import name: what it is needed for}.

    Example::

        needed_packages(("avcompile",), progress=False, plot=False)   # {'sklearn': 'the digits'}
    """
    needs = {"sklearn": "the digits"}
    if progress:
        needs["tqdm"] = "the progress bar; or pass --no-progress"
    if plot:
        needs["matplotlib"] = "--plot"
    if "algovision" in engines:
        needs["algovision"] = "--engine algovision"
    return needs


def missing_packages(needs):
    """The packages of ``needs`` (import names) that cannot be imported, in order."""
    missing = []
    for name in needs:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def require_packages(engines, progress, plot):
    """Exit with a message that names every optional package this run needs and lacks, and how to
    install them, before any training starts."""
    needs = needed_packages(engines, progress, plot)
    missing = missing_packages(needs)
    if missing:
        lines = "".join(f"\n  {PIP_NAMES[name]} (for {needs[name]})" for name in missing)
        sys.exit(
            f"benchmarks.sorting_supervision needs packages that are not installed:{lines}\n"
            f"Install them with: {INSTALL}"
        )


# ---------------------------------------------------------------------------------------------
# Processes


def init_distributed(device):
    """Join the process group that ``torchrun`` describes in the environment: (rank, world size)."""
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    rank = dist.get_rank()
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local)
        return rank, dist.get_world_size(), f"cuda:{local}"
    return rank, dist.get_world_size(), "cpu"


def free_port():
    """A TCP port on the loopback interface that is free now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _spawned(rank, world_size, port, config, directory):
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        history = train(config, rank, world_size)
    finally:
        dist.destroy_process_group()
    torch.save(
        {"parameters": history["parameters"], "loss": history["loss"], "evals": history["evals"]},
        os.path.join(directory, f"rank{rank}.pt"),
    )


def train_spawned(config, world_size=2):
    """Train with DDP in ``world_size`` local processes on loopback (gloo, CPU).

    Returns, per rank, its final parameters, its losses and (rank 0) its evaluations.

    Example::

        ranks = train_spawned(Config(steps=5, test_sets=20, threads=1))
        ranks[0]["parameters"]["head.2.bias"], ranks[1]["parameters"]["head.2.bias"]   # equal
    """
    import tempfile

    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as directory:
        mp.spawn(_spawned, args=(world_size, free_port(), config, directory), nprocs=world_size)
        return [torch.load(os.path.join(directory, f"rank{rank}.pt")) for rank in range(world_size)]


def main(argv=None):
    defaults = Config()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--engine", choices=ENGINES + ("both",), default=defaults.engine)
    p.add_argument("--steps", type=int, default=defaults.steps)
    p.add_argument("--batch", type=int, default=defaults.batch, help="sets per step, all ranks")
    p.add_argument("--n", type=int, default=defaults.n, help="numbers per set")
    p.add_argument("--beta", type=float, default=defaults.beta)
    p.add_argument(
        "--nloglr",
        type=float,
        default=-defaults.log_lr,
        help="negative log10 of Adam's learning rate",
    )
    p.add_argument("--eval-every", type=int, default=defaults.eval_every)
    p.add_argument("--test-sets", type=int, default=defaults.test_sets)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--threads", type=int, default=defaults.threads)
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    p.add_argument("--ddp", action="store_true", help="run under torchrun with DDP")
    p.add_argument("--no-progress", action="store_true", help="log lines instead of a bar")
    p.add_argument("--plot", metavar="PATH", help="save accuracy against steps to PATH (png)")
    p.add_argument("--json", metavar="PATH", help="write the histories and figures to PATH")
    args = p.parse_args(argv)
    engines = ENGINES if args.engine == "both" else (args.engine,)
    require_packages(engines, progress=not args.no_progress, plot=bool(args.plot))

    rank, world_size, device = 0, 1, args.device
    if args.ddp:
        rank, world_size, device = init_distributed(args.device)
    elif device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    histories = []
    for engine in engines:
        config = Config(
            steps=args.steps,
            batch=args.batch,
            n=args.n,
            beta=args.beta,
            log_lr=-args.nloglr,
            engine=engine,
            eval_every=args.eval_every,
            test_sets=args.test_sets,
            seed=args.seed,
            threads=args.threads,
            device=device,
        )
        histories.append(train(config, rank, world_size, progress=not args.no_progress))
    if args.ddp:
        dist.destroy_process_group()
    if rank != 0:
        return
    print(
        f"\n{world_size} process(es), {args.threads} thread(s) each, "
        f"torch {torch.__version__}, device {device}"
    )
    print(
        f"{'engine':<11} {'steps':>6} {'EM':>6} {'EW':>6} {'EM5':>6} {'EM last 5':>10} "
        f"{'s/step':>8} {'sort s/step':>12} {'train s':>8} {'run s':>7}"
    )
    rows = [summarize(h) for h in histories]
    for r in rows:
        print(
            f"{r['engine']:<11} {r['steps']:>6} {r['em']:>6.3f} {r['ew']:>6.3f} {r['em5']:>6.3f} "
            f"{r['em_last5']:>10.3f} {r['step_s']:>8.4f} {r['sort_s']:>12.4f} "
            f"{r['train_s']:>8.1f} {r['run_s']:>7.1f}"
        )
    if args.json:  # first: the results outlast a failure to draw them
        with open(args.json, "w") as f:
            json.dump(
                {
                    "figures": rows,
                    "histories": [
                        {k: v for k, v in h.items() if k != "parameters"} for h in histories
                    ],
                },
                f,
                indent=1,
            )
        print(f"results written to {args.json}")
    if args.plot:
        plot(histories, args.plot)
        print(f"plot written to {args.plot}")


if __name__ == "__main__":
    main()
