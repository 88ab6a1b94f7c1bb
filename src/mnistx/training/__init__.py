"""The training run: the recipe (build -> fit -> test -> record), the LightningModule, its
callbacks, and the few runtime and Lightning tweaks that keep a small model's steps cheap."""
