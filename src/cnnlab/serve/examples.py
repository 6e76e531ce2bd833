"""What the page offers besides an upload: example photos of the run's validation split, and a notice for
a photo smaller than the model's input (it is upscaled: the answer says little about it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..source import ModelSource

__all__ = ["EXAMPLES", "small_photo_notice", "validation_examples"]

#: Example photos offered, taken round-robin over the classes.
EXAMPLES = 8
#: Images per split decoded to pick them (the first of each class are enough).
_DECODED = 64


def small_photo_notice(
    size: tuple[int, int] | list[int], input_size: tuple[int, ...] | list[int]
) -> str | None:
    """A one-line notice when the photo is smaller than the model's input on either side, else None.

    Args:
        size: The photo's (width, height) in pixels.
        input_size: The model's input (channels, height, width).

    Returns:
        The notice, or None.
    """
    width, height = int(size[0]), int(size[1])
    in_h, in_w = int(input_size[-2]), int(input_size[-1])
    if width >= in_w and height >= in_h:
        return None
    return (f"This photo is {width}×{height} px, smaller than the model's {in_w}×{in_h} input: it is "
            "scaled up to that size, so the answer says little about the photo.")


def validation_examples(src: ModelSource, n: int = EXAMPLES) -> list[dict[str, Any]]:
    """Up to ``n`` photos of the run's validation split (round-robin over classes), as JPEG/PNG data URIs.

    Args:
        src: The served model; only a run folder has a validation split (others get none).
        n: How many.

    Returns:
        ``[{"name", "class", "image"}]``; empty when the source is not a run or its data is not reachable.
    """
    from ..data import load_data
    from ..errors import CnnlabError
    from ..report.grids import pick_per_class
    from .render import image_uri

    run = src.run
    if run is None or n < 1:
        return []
    cfg = run.config
    c, h, _ = run.image_size
    try:
        val = load_data(cfg.data, data_dir=cfg.data_dir, img_size=h, val_split=cfg.val_split, seed=cfg.seed,
                        limit=_DECODED, grayscale=c == 1).val
    except CnnlabError:
        return []
    if len(val) == 0:
        return []
    idx = pick_per_class(val.labels, n, len(val.classes))
    images, labels = val.get_batch(idx)
    out = []
    for k, (img, label) in enumerate(zip(images, labels, strict=True)):
        pixels = img.permute(1, 2, 0).numpy()
        pixels = pixels[..., 0] if pixels.shape[-1] == 1 else pixels
        fmt = "JPEG" if pixels.ndim == 3 else "PNG"
        out.append({"name": f"val-{k}-{val.classes[int(label)]}.{fmt.lower().replace('jpeg', 'jpg')}",
                    "class": val.classes[int(label)], "image": image_uri(pixels, fmt=fmt)})
    return out
