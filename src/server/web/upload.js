// Adding images: files dropped on the drop zone or picked with the file input go to POST /index as
// one multipart request, with the optional caption as every file's metadata.

import { api } from './client.js';
import { attempt } from './ui.js';

const $ = (id) => document.getElementById(id);

async function upload(files) {
  const images = [...files].filter((f) => f.type.startsWith('image/') || /\.(png|jpe?g|gif|webp|bmp)$/i.test(f.name));
  const status = $('upload-status');
  if (images.length === 0) {
    status.textContent = 'No image files in that selection.';
    return;
  }
  const form = new FormData();
  const caption = $('caption-input').value.trim();
  if (caption) form.append('metadata', JSON.stringify({ caption }));
  for (const f of images) form.append('file', f, f.name);
  status.textContent = `Adding ${images.length} image${images.length > 1 ? 's' : ''}…`;
  try {
    const res = await api('/index', { form });
    status.textContent = `Added ${res.ids.length} image${res.ids.length > 1 ? 's' : ''} (${res.ids.join(', ')}); the index holds ${res.size}.`;
    $('caption-input').value = '';
    document.dispatchEvent(new CustomEvent('clipfit:indexed', { detail: res }));
  } catch (err) {
    status.textContent = '';
    throw err;
  }
}

export function initUpload() {
  const zone = $('drop-zone');
  const input = $('file-input');
  input.addEventListener('change', () => {
    const files = [...input.files];
    input.value = '';
    attempt(() => upload(files));
  });
  for (const type of ['dragenter', 'dragover']) {
    zone.addEventListener(type, (ev) => {
      ev.preventDefault();
      zone.classList.add('over');
    });
  }
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (ev) => {
    ev.preventDefault();
    zone.classList.remove('over');
    const files = ev.dataTransfer ? [...ev.dataTransfer.files] : [];
    attempt(() => upload(files));
  });
  zone.addEventListener('keydown', (ev) => {
    if (ev.target === zone && (ev.key === 'Enter' || ev.key === ' ')) {
      ev.preventDefault();
      input.click();
    }
  });
}
