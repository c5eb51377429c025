"""What `snnl analyze` reads: the model (an snnl checkpoint or a torchvision model with local
weights), the images (a prepared dataset or an ImageFolder) and the sample it analyses.

The input contract (the model gets what it expects):

* **snnl checkpoints** take pixels in [0, 1] of the shape stored in the checkpoint
  (``model_spec.input_shape``) and normalise inside. A prepared dataset must have that shape;
  an ImageFolder is converted to gray (ITU-R 601-2 luma) or RGB and resized to exactly H x W
  (bilinear, antialiased).
* **torchvision models** get the evaluation preprocessing of their torchvision weights
  (``torchvision.models.get_model_weights(NAME).DEFAULT.transforms()``, read from torchvision's
  metadata, nothing downloaded; ImageNet's 256 / 224 / mean / std when there is none): an
  ImageFolder image is converted to RGB, its shorter side resized to ``resize`` and centre-cropped
  to ``crop`` x ``crop``; a prepared dataset is converted to RGB and resized to ``crop`` x ``crop``
  (its images are small and centred: a crop would cut them). The [0, 1] pixels are then
  normalised with ``mean`` / ``std`` on the device (:class:`snnl.models.Normalize`) before the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from snnl.errors import CheckpointError, ConfigError, DataError

IMAGENET = {"crop": 224, "resize": 256, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}


@dataclass
class Preprocessing:
    """The images a model expects: ``shape`` (C, H, W) exactly (snnl checkpoints), or RGB
    resized to ``resize`` (shorter side), centre-cropped to ``crop`` and normalised with
    ``mean`` / ``std`` (torchvision models)."""

    shape: tuple[int, int, int] | None = None
    resize: int | None = None
    crop: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    @property
    def channels(self) -> int:
        return self.shape[0] if self.shape is not None else 3

    def transform(self, device: torch.device | str = "cpu") -> nn.Module | None:
        """The normalisation to apply to [0, 1] batches before the model (None: it normalises inside)."""
        if self.mean is None:
            return None
        from snnl.models import Normalize

        return Normalize(3, self.mean, self.std).to(device)

    def describe(self) -> str:
        if self.shape is not None:
            return f"{self.shape[0]}x{self.shape[1]}x{self.shape[2]} pixels in [0, 1] (the model normalises inside)"
        return (f"RGB, shorter side {self.resize}, centre crop {self.crop}, normalised with mean "
                f"{list(self.mean or ())} std {list(self.std or ())}")


@dataclass
class Inputs:
    """Images and labels to analyse. images: uint8 (N, C, H, W); labels: int64 (N,);
    ``notes``: the conversions applied on the way (gray to RGB, resizing)."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    name: str
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------
# the sample


def choose_sample(labels: Sequence[int] | np.ndarray | torch.Tensor, samples: int, batch_size: int, seed: int) -> np.ndarray:
    """Indices of the analysed sample, in batch order: a class-stratified sample of
    ``min(samples, N)`` (:func:`snnl.data.stratified_take`, NumPy ``default_rng(seed)``), shuffled
    with the same generator, cut to a whole number of batches of ``batch_size`` (the remainder is
    left out: the SNNL depends on the batch size, so every batch has the same).

    Raises:
        DataError: fewer than ``batch_size`` images, or ``batch_size`` < 2.
    """
    from snnl.data.splits import stratified_take

    y = np.asarray(torch.as_tensor(labels).cpu().numpy(), dtype=np.int64)
    if int(batch_size) < 2:
        raise DataError(f"--batch-size {batch_size}: a batch needs at least 2 images")
    n = min(int(samples), y.shape[0])
    if n < batch_size:
        raise DataError(f"{n} images to analyse (--samples {samples}, {y.shape[0]} available) do not fill one batch "
                        f"of --batch-size {batch_size}; lower --batch-size")
    rng = np.random.default_rng(int(seed))
    taken, _ = stratified_take(y, n, rng)
    return rng.permutation(taken)[: (n // batch_size) * batch_size]


# ---------------------------------------------------------------------------------------
# models


def checkpoint_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, Preprocessing, dict]:
    """(model in eval mode on ``device``, its :class:`Preprocessing`, the checkpoint dict) from
    an snnl checkpoint (:func:`snnl.checkpoint.load_model`, ``weights_only=True``)."""
    from snnl.checkpoint import load_model

    model, ckpt = load_model(path, device=device)
    shape = tuple(int(s) for s in ckpt["model_spec"]["input_shape"])
    return model, Preprocessing(shape=shape), ckpt  # type: ignore[arg-type]


def classification_models() -> list[str]:
    """The names ``--torchvision`` accepts: torchvision's image classification models."""
    import torchvision

    return list(torchvision.models.list_models(module=torchvision.models))


def torchvision_preprocessing(
    name: str,
    crop: int | None = None,
    resize: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Preprocessing:
    """The evaluation preprocessing of torchvision's default weights for ``name`` (metadata
    only), ImageNet's when there is none; each argument given overrides it. A ``crop`` given
    without ``resize`` keeps the default resize / crop ratio (256 / 224 for most models)."""
    d = dict(IMAGENET)
    try:
        from torchvision.models import get_model_weights

        t = get_model_weights(name).DEFAULT.transforms()
        d = {"crop": int(t.crop_size[0]), "resize": int(t.resize_size[0]), "mean": tuple(t.mean), "std": tuple(t.std)}
    except (AttributeError, ValueError, KeyError, TypeError, IndexError):
        pass
    if crop is not None and resize is None:
        resize = int(round(crop * d["resize"] / d["crop"]))
    for what, value in (("--image-size", crop), ("--resize-size", resize)):
        if value is not None and int(value) < 1:
            raise ConfigError(f"{what} {value}: give a positive number of pixels")
    mean, std = tuple(mean or d["mean"]), tuple(std or d["std"])
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ConfigError(f"--mean {list(mean)} --std {list(std)}: give three values each (R G B), std > 0")
    return Preprocessing(resize=int(resize or d["resize"]), crop=int(crop or d["crop"]), mean=mean, std=std)


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict (``{name: tensor}``) from ``path``, read with ``torch.load(weights_only=True)``.

    A dict that wraps one under ``state_dict`` or ``model`` (common training checkpoints) is
    unwrapped, and a ``module.`` prefix on every key (``nn.DataParallel``) removed.

    Raises:
        CheckpointError: the file is missing, corrupt, holds pickled objects (a whole pickled
            model) or is not a dict of tensors.
    """
    from snnl.checkpoint import FORMAT, load_weights_only

    path = Path(path)
    save = f"save one with torch.save(model.state_dict(), {str(path)!r})"
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist; {save}")
    obj = load_weights_only(path, what="weights file", fix=save,
                            pickled_fix=f"Pass a state_dict instead of a whole model: {save}")
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        raise CheckpointError(f"{path} is an snnl training checkpoint; pass it with --checkpoint, not --weights")
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not (isinstance(obj, dict) and obj and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())):
        raise CheckpointError(f"weights file {path} does not hold a state_dict (a dict of tensors, got "
                              f"{type(obj).__name__}); {save}")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def torchvision_model(
    name: str, weights: str | Path, *, num_classes: int | None = None, device: torch.device | str = "cpu"
) -> nn.Module:
    """torchvision's classification model ``name`` built without weights (nothing is downloaded),
    loaded strictly with the state dict in the local file ``weights``, in eval mode on ``device``.

    ``num_classes``: the size of its classification head; by default the first dimension of
    the state dict's last tensor (the head's bias or weight in torchvision's models).

    Raises:
        ConfigError: ``name`` is not a torchvision classification model.
        CheckpointError: the weights file is missing or unreadable, or does not fit the model.
    """
    from torchvision.models import get_model

    from snnl.checkpoint import load_state_strict

    known = classification_models()
    if name not in known:
        raise ConfigError(f"--torchvision {name!r} is not a torchvision classification model; choose one of "
                          f"{', '.join(known)}")
    state = load_state_dict_file(weights)
    if num_classes is None:
        num_classes = int(list(state.values())[-1].shape[0]) if list(state.values())[-1].dim() else 1000
    try:
        model = get_model(name, weights=None, num_classes=int(num_classes))
    except (TypeError, ValueError, RuntimeError) as err:
        raise ConfigError(f"cannot build torchvision model {name!r} with {num_classes} classes: {err}") from None
    try:
        load_state_strict(model, state, "weights", weights)
    except CheckpointError as err:
        raise CheckpointError(f"{err} (torchvision {name}, {num_classes} classes: check --torchvision and "
                              "--num-classes)") from None
    return model.to(device).eval()


# ---------------------------------------------------------------------------------------
# images


def prepared_inputs(path: str | Path, split: str, prep: Preprocessing) -> Inputs:
    """A split of a prepared dataset (:func:`snnl.data.load_prepared`, hashes verified),
    as the model expects it (module docstring).

    Raises:
        DataError: the folder or split is missing or damaged, or (snnl checkpoints) its images
            do not have the model's input shape.
    """
    from snnl.data import load_prepared
    from snnl.data.adapt import adapt_images

    if not Path(path).is_dir():
        raise DataError(f"prepared dataset {path} does not exist; write it with `snnl prepare-data --dataset NAME --out {path}`")
    data = load_prepared(path)
    images, labels = getattr(data, split)
    notes: list[str] = []
    if prep.shape is not None and tuple(images.shape[1:]) != prep.shape:
        raise DataError(f"{path} holds images of shape {tuple(images.shape[1:])}, the model takes {prep.shape}; "
                        "pass the dataset it was trained on, or an --image-folder (resized for the model)")
    if prep.shape is None:
        arr, notes = adapt_images(images.numpy(), (3, prep.crop, prep.crop))
        images = torch.from_numpy(arr)
    return Inputs(images, labels.long(), list(data.classes), f"{data.name}:{split}", notes)


def _image_transform(prep: Preprocessing):
    from torchvision.transforms import v2

    if prep.shape is not None:
        return v2.Compose([v2.PILToTensor(), v2.Resize(list(prep.shape[1:]), antialias=True)])
    return v2.Compose([v2.PILToTensor(), v2.Resize(prep.resize, antialias=True), v2.CenterCrop(prep.crop)])


def image_folder_inputs(root: str | Path, prep: Preprocessing, *, samples: int, seed: int) -> Inputs:
    """A class-stratified sample of ``samples`` images (NumPy ``default_rng(seed)``) of the
    ImageFolder ``root`` (one sub-folder per class, torchvision's layout), decoded and
    preprocessed for the model (module docstring); only the sampled files are read.

    Raises:
        DataError: ``root`` is missing, has no class folder or image, or a file is not an image.
    """
    from PIL import Image, UnidentifiedImageError
    from torchvision.datasets import ImageFolder

    from snnl.data.splits import stratified_take

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist; pass a folder with one sub-folder of images per class")
    try:
        folder = ImageFolder(str(root))
    except (FileNotFoundError, RuntimeError) as err:
        raise DataError(f"image folder {root}: {str(err).splitlines()[0]}; put the images in one sub-folder per class "
                        "(ROOT/CLASS/IMAGE.png)") from None
    targets = np.asarray(folder.targets, dtype=np.int64)
    taken, _ = stratified_take(targets, min(int(samples), targets.shape[0]), np.random.default_rng(int(seed)))
    transform, mode = _image_transform(prep), ("L" if prep.channels == 1 else "RGB")
    images = []
    for i in taken:
        file = folder.samples[int(i)][0]
        try:
            with Image.open(file) as img:
                images.append(transform(img.convert(mode)))
        except (UnidentifiedImageError, OSError) as err:
            raise DataError(f"image folder {root}: {file} cannot be read as an image ({type(err).__name__}); "
                            "remove or replace it") from None
    size = prep.describe()
    return Inputs(torch.stack(images), torch.from_numpy(targets[taken]), list(folder.classes), f"imagefolder:{root}",
                  [f"{len(taken)} of {targets.shape[0]} images, converted to {size}"])
