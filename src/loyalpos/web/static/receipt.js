// The receipt page: the 打印 button prints, and the page printed is exactly as
// long as the receipt, so a thermal printer feeds no blank paper after it (CSS
// cannot say "as long as the content": receipt.css has a fallback length).
(function () {
  var receipt = document.querySelector(".receipt");
  if (!receipt) { return; }
  var paper = receipt.dataset.paper;
  var style = document.createElement("style");
  document.head.appendChild(style);
  function fit() {
    var pxPerMm = 96 / 25.4;
    var height = Math.ceil(receipt.getBoundingClientRect().height / pxPerMm) + 2;
    // Named like receipt.css's page and later in the document, so it wins.
    style.textContent = "@page paper" + paper + " { size: " + paper + "mm " + height + "mm; margin: 0; }";
  }
  window.addEventListener("beforeprint", fit);
  fit();
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { fit(); window.print(); });
  });
})();
