/**
 * Builds the tfjs LayersModel for a model spec and moves weights between it and the spec's
 * named-weight order (model-spec.ts `parameterShapes`). Used for training on devices and in models/.
 */
import type * as TF from '@tensorflow/tfjs';
import { tf } from './tfjs-loader.ts';
import { type ModelSpec, type NamedWeight, parameterShapes } from './model-spec.ts';

export function buildTfjsModel(spec: ModelSpec, seed = 0): TF.Sequential {
  const model = tf.sequential({ name: spec.name.replace(/[^A-Za-z0-9_]/g, '_') });
  spec.layers.forEach((layer, i) => {
    const first = i === 0 ? { inputShape: spec.inputShape } : {};
    const init = {
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed + i }),
      biasInitializer: 'zeros' as const,
    };
    switch (layer.type) {
      case 'dense':
        model.add(
          tf.layers.dense({ ...first, ...init, units: layer.units, activation: layer.activation, name: `l${i}_dense` }),
        );
        break;
      case 'conv2d':
        model.add(
          tf.layers.conv2d({
            ...first,
            ...init,
            filters: layer.filters,
            kernelSize: layer.kernelSize,
            strides: layer.strides ?? 1,
            padding: layer.padding,
            activation: layer.activation,
            name: `l${i}_conv2d`,
          }),
        );
        break;
      case 'maxPool2d':
        model.add(
          tf.layers.maxPooling2d({
            ...first,
            poolSize: layer.poolSize,
            strides: layer.strides ?? layer.poolSize,
            name: `l${i}_pool`,
          }),
        );
        break;
      case 'flatten':
        model.add(tf.layers.flatten({ ...first, name: `l${i}_flatten` }));
        break;
      case 'dropout':
        model.add(tf.layers.dropout({ ...first, rate: layer.rate, seed: seed + i, name: `l${i}_dropout` }));
        break;
    }
  });
  return model;
}

/** Reads the model's weights in spec order (copies; no tensors stay alive). */
export function readTfjsWeights(spec: ModelSpec, model: TF.LayersModel): NamedWeight[] {
  const params = parameterShapes(spec);
  const tensors = model.getWeights();
  if (tensors.length !== params.length)
    throw new Error(`tfjs model has ${tensors.length} weights, spec expects ${params.length}`);
  return params.map((p, i) => ({ name: p.name, shape: p.shape, values: tensors[i]!.dataSync() as Float32Array }));
}

export function writeTfjsWeights(model: TF.LayersModel, weights: NamedWeight[]): void {
  const tensors = weights.map((w) => tf.tensor(w.values, w.shape, 'float32'));
  model.setWeights(tensors);
  tensors.forEach((t) => t.dispose());
}
