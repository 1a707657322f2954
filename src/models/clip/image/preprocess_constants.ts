// CLIP's pixel statistics, the one place they are written: OpenAI's dataset mean and standard
// deviation per RGB channel (clip/clip.py `_transform`), the default of open_clip configs, of Hugging
// Face preprocessor_config.json files without image_mean/image_std, and of preprocessing.

export const OPENAI_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const OPENAI_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];
