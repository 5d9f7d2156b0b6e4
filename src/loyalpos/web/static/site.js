// loyalpos pages: a form is sent once (a second Enter or click waits for the answer).
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form.dataset.sent) { event.preventDefault(); return; }
  form.dataset.sent = "1";
  var button = form.querySelector("button[type=submit]");
  if (button) { button.disabled = true; }
});
