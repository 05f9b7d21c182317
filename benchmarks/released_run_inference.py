"""The released ``run_inference.py`` re-stated: the baseline of ``inference_benchmark.py``
(it imports nothing of this project).

    python benchmarks/released_run_inference.py --input_data_path 'shards/*.tfrecord.gz' \
        --exported_model_dir model/ --num_inference_samples 720

It reads as the published script does (``../shared/reference-notes.md``, and
the script itself, google-research ``soil_moisture_retrieval/run_inference.py``):

* one ``tf.compat.v1.Session`` on the default graph holding both the input
  pipeline and the model (loaded after the iterator is initialised);
* ``tf.data.TFRecordDataset(files, compression_type="GZIP")`` over the glob;
* ``.map(parse, num_parallel_calls=10)``: ``tf.io.parse_single_example`` of
  *every* field the released parser names: ``sensor_id`` (string, required),
  ``center_lat, center_long, timestamp, sm_0_5, sm_5_5`` (float32, default 0),
  ``smap_sm, gldas_sm`` (int64, default 0) and 17 image bands as
  ``FixedLenFeature((512, 512), tf.int64)`` (the 14 the model reads plus
  Sentinel-2 B5, B6, B7);
* ``.map(decode, num_parallel_calls=10)``: the DEM in float32,
  ``int64(clip(e / 3000 * 255, 0, 255))``; the bands joined by a ``concat`` of
  ``expand_dims`` in int64, then cast to float32; the label
  ``sm_5_5 if sm_0_5 == 0 else sm_0_5`` (a ``tf.cond``); aux ``[smap, gldas] / 255``;
* skipped samples are fetched and dropped; then per sample one
  ``session.run`` of the whole decoded element and one of the model with a
  batch of 1, printing ``Prediction {i}: {value}``.

``--image_size`` (default 512, the release's only size) exists for small test data.
"""

import argparse

IMAGE_BANDS = ("sentinel_1_VV", "sentinel_1_VH", "sentinel_1_angle", "sentinel_2_B4",
               "sentinel_2_B3", "sentinel_2_B2", "sentinel_2_B8", "sentinel_2_B11",
               "sentinel_2_B12", "nasa_dem_elevation")
LOW_RES_BANDS = ("soil_grids_sand_sand_0-5cm_mean", "soil_grids_silt_silt_0-5cm_mean",
                 "soil_grids_clay_clay_0-5cm_mean", "soil_grids_bd_bdod_0-5cm_mean")
#: parsed by the released script although the model does not read them
UNUSED_BANDS = ("sentinel_2_B5", "sentinel_2_B6", "sentinel_2_B7")
FLOATS = ("center_lat", "center_long", "timestamp", "sm_0_5", "sm_5_5")
AUX = ("smap_sm", "gldas_sm")


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--input_data_path", required=True)
    parser.add_argument("--exported_model_dir", required=True)
    parser.add_argument("--num_inference_samples", type=int, default=5)
    parser.add_argument("--num_skip_samples", type=int, default=0)
    parser.add_argument("--image_size", type=int, default=512)
    args = parser.parse_args(argv)

    import numpy as np
    import tensorflow.compat.v1 as tf

    tf.disable_eager_execution()
    size = args.image_size
    spec = {"sensor_id": tf.io.FixedLenFeature([], tf.string)}
    spec.update({n: tf.io.FixedLenFeature([], tf.float32, default_value=0.0) for n in FLOATS})
    spec.update({n: tf.io.FixedLenFeature([], tf.int64, default_value=0) for n in AUX})
    spec.update({n: tf.io.FixedLenFeature((size, size), tf.int64)
                 for n in (*IMAGE_BANDS, *UNUSED_BANDS, *LOW_RES_BANDS)})

    def parse(serialized):
        return tf.io.parse_single_example(serialized=serialized, features=spec)

    def decode(example):
        elevation = tf.cast(example["nasa_dem_elevation"], tf.float32)
        example["nasa_dem_elevation"] = tf.cast(
            tf.clip_by_value((elevation - 0.0) / (3000.0 - 0.0) * 255.0, 0.0, 255.0), tf.int64)

        def joined(names):
            return tf.concat([tf.expand_dims(example[n], axis=-1) for n in names], axis=-1)

        return {
            "image": tf.cast(joined(IMAGE_BANDS), tf.float32),
            "low_res_image": tf.cast(joined(LOW_RES_BANDS), tf.float32),
            "image_name": example["sensor_id"],
            "timestamp": example["timestamp"],
            "label": tf.cond(tf.equal(example["sm_0_5"], 0.0), lambda: example["sm_5_5"],
                             lambda: example["sm_0_5"]),
            "auxiliary_inputs": tf.stack([tf.cast(example[n], tf.float32) / 255.0 for n in AUX]),
        }

    tf.reset_default_graph()
    with tf.Session() as session:
        files = tf.io.gfile.glob(args.input_data_path)
        dataset = tf.data.TFRecordDataset(tf.convert_to_tensor(files), compression_type="GZIP")
        dataset = dataset.map(parse, num_parallel_calls=10).map(decode, num_parallel_calls=10)
        iterator = tf.data.make_initializable_iterator(dataset)
        session.run(iterator.initializer)
        next_element = iterator.get_next()
        for _ in range(args.num_skip_samples):
            session.run(next_element)
        tf.saved_model.load(session, {"serve"}, args.exported_model_dir)
        for i in range(args.num_inference_samples):
            sample = session.run(next_element)
            value = session.run("clip_by_value:0", feed_dict={
                "ImageTensor:0": np.expand_dims(sample["image"], 0),
                "LowResImageTensor:0": np.expand_dims(sample["low_res_image"], 0),
                "AuxTensor:0": np.expand_dims(sample["auxiliary_inputs"], 0)})
            print(f"Prediction {i}:", value.squeeze(), flush=True)


if __name__ == "__main__":
    main()
