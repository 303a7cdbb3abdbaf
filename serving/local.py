"""What `recomart recommend USER [--explain]` prints: the local champion model's answer."""

from __future__ import annotations

from models_ml import package
from recomart_core import config

PATH_TEXT = {
    "model": "{description}",
    "blend": "few interactions: {model} blended with their categories",
    "popular": "no history: recent popularity",
}


def print_recommendations(
    cfg: config.Config, user_id: str, n: int | None = None, explain: bool = False
) -> None:
    """Print the top n of user_id (a shop id) from <paths.models>/champion, with explanations
    if asked."""
    model = package.load_local(cfg.paths.models)
    n = n or cfg.settings.train.k
    path = model.user_path(user_id)
    text = PATH_TEXT[path].format(model=model.title, description=model.description)
    print(f"user {user_id}: {text}")
    for rank, (item, score) in enumerate(model.recommend_items(user_id, n), start=1):
        cold = " (no interactions yet)" if model.is_cold_item(item) else ""
        print(f"{rank:>3}. item {item:<8} score {score:9.4f}  {model.item_category(item)}{cold}")
        if explain:
            why = model.explain(user_id, item, n=3)
            for c in why["contributions"]:
                print(f"       because of item {c['item_id']} ({c['category']}):"
                      f" {c['contribution']:+.4f}")  # fmt: skip
            if why["similar_liked_items"]:
                print(f"       catalog-similar to liked items {why['similar_liked_items']}")
