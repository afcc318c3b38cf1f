"""Voice prints -> speakers: spectral clustering over the whole file, with the number of
speakers read from the eigengap unless the job fixed it.

The ideas are the ones 3D-Speaker and NME-SC (Park et al., 2019) describe: keep each print's
nearest neighbours only (pruning turns a dense, noisy similarity matrix into a graph whose
connected parts are the speakers), count the near-zero eigenvalues of its Laplacian, and run
k-means on the matching eigenvectors. Then clusters whose centres still sound alike are merged,
and clusters too small to be a speaker are folded into their nearest neighbour.

Long files give thousands of windows; the eigen-decomposition is cubic in them, so beyond
``MAX_SPECTRAL`` a spread-out sample is clustered and every print joins its nearest centre.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_SPECTRAL = 1500
# Every print keeps at least this many neighbours, or this share of all prints if more.
MIN_NEIGHBOURS = 6
NEIGHBOUR_SHARE = 0.04
MIN_CLUSTER = 2  # fewer windows than this (about 1.5 s of speech) cannot be told from noise


@dataclass(frozen=True)
class ClusterOptions:
    min_speakers: int = 1
    max_speakers: int = 20
    merge_similarity: float = 0.8


def cluster(embeddings: np.ndarray, options: ClusterOptions) -> np.ndarray:
    """A speaker index (0..k-1) per print; ``embeddings`` are unit length."""
    n = len(embeddings)
    if n == 0:
        return np.zeros(0, dtype=int)
    low = min(options.min_speakers, n)
    high = max(low, min(options.max_speakers, n))
    if n <= 2 or high == 1:
        return np.zeros(n, dtype=int)
    rng = np.random.default_rng(0)
    sample = np.linspace(0, n - 1, MAX_SPECTRAL).round().astype(int) if n > MAX_SPECTRAL else None
    prints = embeddings if sample is None else embeddings[sample]
    labels = _spectral(prints, low, high, rng)
    if sample is not None:
        labels = _nearest(embeddings, _centres(prints, labels))
    labels = _merge_alike(embeddings, labels, options.merge_similarity, low)
    labels = _fold_small(embeddings, labels, low)
    # One pass of reassignment to the final centres tidies the sample's boundary cases.
    labels = _nearest(embeddings, _centres(embeddings, labels))
    return _dense(labels)


def _spectral(x: np.ndarray, low: int, high: int, rng: np.random.Generator) -> np.ndarray:
    n = len(x)
    similarity = x @ x.T
    keep = min(n - 1, max(MIN_NEIGHBOURS, int(NEIGHBOUR_SHARE * n)))
    affinity = np.zeros_like(similarity)
    nearest = np.argsort(-similarity, axis=1)[:, : keep + 1]
    rows = np.repeat(np.arange(n), keep + 1)
    affinity[rows, nearest.ravel()] = np.clip(similarity[rows, nearest.ravel()], 0, None)
    affinity = (affinity + affinity.T) / 2
    np.fill_diagonal(affinity, 0)
    laplacian = np.diag(affinity.sum(axis=1)) - affinity
    values, vectors = np.linalg.eigh(laplacian)
    # The eigengap cannot say "one" (a connected graph's second eigenvalue is no gap): it
    # picks among two or more, and ``_merge_alike`` joins two halves of one voice.
    k = (
        low
        if low == high
        else int(np.argmax(np.diff(values[: high + 1])[max(low, 2) - 1 : high])) + max(low, 2)
    )
    if k == 1:
        return np.zeros(n, dtype=int)
    return _kmeans(vectors[:, :k], k, rng)


def _kmeans(x: np.ndarray, k: int, rng: np.random.Generator, restarts: int = 8) -> np.ndarray:
    best, best_cost = np.zeros(len(x), dtype=int), np.inf
    for _ in range(restarts):
        centres = _plus_plus(x, k, rng)
        for _ in range(100):
            distances = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
            labels = distances.argmin(axis=1)
            moved = np.array(
                [
                    x[labels == j].mean(axis=0) if np.any(labels == j) else centres[j]
                    for j in range(k)
                ]
            )
            if np.allclose(moved, centres):
                break
            centres = moved
        cost = float(distances[np.arange(len(x)), labels].sum())
        if cost < best_cost:
            best, best_cost = labels, cost
    return best


def _plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centres = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d = np.min([((x - c) ** 2).sum(axis=1) for c in centres], axis=0)
        total = d.sum()
        pick = rng.choice(len(x), p=d / total) if total > 0 else rng.integers(len(x))
        centres.append(x[pick])
    return np.array(centres)


def _centres(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    centres = np.array([x[labels == j].mean(axis=0) for j in np.unique(labels)])
    return np.asarray(centres / np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-8))


def _nearest(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    return np.asarray((x @ centres.T).argmax(axis=1))


def _merge_alike(x: np.ndarray, labels: np.ndarray, threshold: float, low: int) -> np.ndarray:
    labels = _dense(labels)
    while labels.max() + 1 > low:
        centres = _centres(x, labels)
        alike = centres @ centres.T
        np.fill_diagonal(alike, -1)
        i, j = np.unravel_index(np.argmax(alike), alike.shape)
        if alike[i, j] < threshold:
            break
        labels = _dense(np.where(labels == j, i, labels))
    return labels


def _fold_small(x: np.ndarray, labels: np.ndarray, low: int) -> np.ndarray:
    labels = _dense(labels)
    while labels.max() + 1 > max(low, 1):
        sizes = np.bincount(labels)
        small = int(np.argmin(sizes))
        if sizes[small] >= MIN_CLUSTER:
            break
        centres = _centres(x, labels)
        alike = centres @ centres[small]
        alike[small] = -np.inf
        labels = _dense(np.where(labels == small, int(np.argmax(alike)), labels))
    return labels


def _dense(labels: np.ndarray) -> np.ndarray:
    _, dense = np.unique(labels, return_inverse=True)
    return dense.astype(int)
