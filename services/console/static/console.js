// The member console's only script of its own (no inline code: the Content Security Policy forbids it).
// Every htmx request carries the session's form token, as every form does.
document.addEventListener("htmx:configRequest", function (event) {
  var token = document.body.dataset.csrf;
  if (token) {
    event.detail.headers["X-CSRF-Token"] = token;
  }
});
// Buttons marked data-confirm ask before they act.
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-confirm]");
  if (button && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
  }
});
