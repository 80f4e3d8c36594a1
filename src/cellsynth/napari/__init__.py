"""napari plugin (npe2 manifest ``napari.yaml``; extra ``cellsynth[napari]``).

- reader (:mod:`.reader`): a cellsynth dataset folder opens as an image and a labels
  layer with the physical voxel size as scale;
- writer (:mod:`.writer`): the current image + labels layers saved as a dataset sample;
- sample data (:mod:`.sample`): one simulated, rendered scene per preset;
- widget (:mod:`.widget`): pick a preset, edit its main parameters, simulate and render
  into layers.

napari itself is imported only by the widget; reader, writer and sample data return
plain layer-data tuples, so they also run (and are tested) without a display.
"""
