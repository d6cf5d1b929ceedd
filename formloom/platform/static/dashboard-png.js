// Dashboard widgets: "PNG" turns the widget's inline SVG chart into a PNG file via a canvas.
// The SVG carries its colours as presentation attributes, so it draws the same outside the page.
// It is loaded as an image from a data: URL (the CSP's img-src allows 'self' and data:).

function svgDataUrl(svg) {
  const copy = svg.cloneNode(true);
  copy.setAttribute("xmlns", "http://www.w3.org/2000/svg");
  const text = new XMLSerializer().serializeToString(copy);
  const bytes = new TextEncoder().encode(text);  // UTF-8: Chinese labels survive base64
  let binary = "";
  bytes.forEach((b) => { binary += String.fromCharCode(b); });
  return "data:image/svg+xml;base64," + btoa(binary);
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("The chart could not be drawn as an image."));
    image.src = url;
  });
}

export async function svgToPngBlob(svg, scale = 2) {
  const width = Number(svg.getAttribute("width")) || svg.viewBox.baseVal.width;
  const height = Number(svg.getAttribute("height")) || svg.viewBox.baseVal.height;
  const image = await loadImage(svgDataUrl(svg));
  const canvas = document.createElement("canvas");
  canvas.width = width * scale;
  canvas.height = height * scale;
  const context = canvas.getContext("2d");
  context.fillStyle = "#ffffff";
  context.fillRect(0, 0, canvas.width, canvas.height);
  context.drawImage(image, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

async function download(button) {
  const svg = button.closest("[data-widget]").querySelector("svg.chart");
  if (!svg) return;
  const blob = await svgToPngBlob(svg);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = button.dataset.png;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-png]");
  if (button) {
    event.preventDefault();
    download(button).catch((error) => { button.title = error.message; });
  }
});
