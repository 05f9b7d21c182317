"""The released ``run_inference.py``, re-stated from ``../shared/reference-notes.md``:
the baseline of ``inference_benchmark.py`` (it imports nothing of this project).

    python benchmarks/released_run_inference.py --input_data_path 'shards/*.tfrecord.gz' \
        --exported_model_dir model/ --num_inference_samples 720

As the notes describe it: ``tf.data.TFRecordDataset(files, compression_type="GZIP")``,
``.map(parse, num_parallel_calls=10)`` with ``tf.io.parse_single_example``
(the 14 model bands as ``FixedLenFeature((512, 512), tf.int64)``, the two
scalars with default 0), ``.map(decode, num_parallel_calls=10)`` (DEM
``trunc(clip(elevation / 3000 * 255, 0, 255))``, other bands cast to float32,
scalars / 255), an initializable iterator, and one ``session.run`` of the
model per example with a batch of 1, printing ``Prediction {i}: {value}``.
TensorFlow parses and decodes in background threads while the model runs.
"""

import argparse
import glob

IMAGE_BANDS = ("sentinel_1_VV", "sentinel_1_VH", "sentinel_1_angle", "sentinel_2_B4",
               "sentinel_2_B3", "sentinel_2_B2", "sentinel_2_B8", "sentinel_2_B11",
               "sentinel_2_B12", "nasa_dem_elevation")
LOW_RES_BANDS = ("soil_grids_sand_sand_0-5cm_mean", "soil_grids_silt_silt_0-5cm_mean",
                 "soil_grids_clay_clay_0-5cm_mean", "soil_grids_bd_bdod_0-5cm_mean")
AUX = ("smap_sm", "gldas_sm")


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--input_data_path", required=True)
    parser.add_argument("--exported_model_dir", required=True)
    parser.add_argument("--num_inference_samples", type=int, default=5)
    parser.add_argument("--num_skip_samples", type=int, default=0)
    parser.add_argument("--image_size", type=int, default=512)
    args = parser.parse_args(argv)

    import tensorflow as tf

    v1 = tf.compat.v1
    v1.disable_eager_execution()
    size = args.image_size
    spec = {name: tf.io.FixedLenFeature((size, size), tf.int64)
            for name in (*IMAGE_BANDS, *LOW_RES_BANDS)}
    spec.update({name: tf.io.FixedLenFeature((), tf.int64, default_value=0) for name in AUX})

    def parse(serialized):
        return tf.io.parse_single_example(serialized, spec)

    def decode(features):
        def band(name):
            x = tf.cast(features[name], tf.float32)
            if name == "nasa_dem_elevation":
                x = tf.floor(tf.clip_by_value(x / 3000.0 * 255.0, 0.0, 255.0))
            return x

        image = tf.stack([band(n) for n in IMAGE_BANDS], axis=-1)
        low_res = tf.stack([band(n) for n in LOW_RES_BANDS], axis=-1)
        aux = tf.stack([tf.cast(features[n], tf.float32) / 255.0 for n in AUX])
        return image, low_res, aux

    files = sorted(glob.glob(args.input_data_path))
    dataset = (tf.data.TFRecordDataset(files, compression_type="GZIP")
               .skip(args.num_skip_samples)
               .map(parse, num_parallel_calls=10)
               .map(decode, num_parallel_calls=10))
    iterator = v1.data.make_initializable_iterator(dataset)
    next_element = iterator.get_next()
    with v1.Session(graph=tf.compat.v1.get_default_graph()) as session:
        v1.saved_model.loader.load(session, ["serve"], args.exported_model_dir)
        graph = session.graph
        output = graph.get_tensor_by_name("clip_by_value:0")
        feeds = [graph.get_tensor_by_name(n)
                 for n in ("ImageTensor:0", "LowResImageTensor:0", "AuxTensor:0")]
        session.run(iterator.initializer)
        for i in range(args.num_inference_samples):
            try:
                image, low_res, aux = session.run(next_element)
            except tf.errors.OutOfRangeError:
                break
            value = session.run(output, {feeds[0]: image[None], feeds[1]: low_res[None],
                                         feeds[2]: aux[None]})
            print(f"Prediction {i}: {value.ravel()[0]}", flush=True)


if __name__ == "__main__":
    main()
