// The only script of the consoles: narrow the district list to the chosen province. Without it the form
// still works (all districts, grouped by province).
document.querySelectorAll("select[data-districts]").forEach(function (province) {
  var district = document.getElementById(province.dataset.districts);
  if (!district) return;
  function narrow() {
    district.querySelectorAll("optgroup").forEach(function (group) {
      var show = !province.value || group.dataset.province === province.value;
      group.hidden = !show;
      group.disabled = !show;
    });
    var chosen = district.selectedOptions[0];
    if (chosen && chosen.parentElement.disabled) district.value = "";
  }
  province.addEventListener("change", narrow);
  narrow();
});
