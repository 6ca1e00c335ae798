// The dashboard's entry point (being built): hash routes to views.
const main = document.getElementById('main');
if (main) main.textContent = 'atlas dashboard';
