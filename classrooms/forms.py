from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from modelworker import registry

from .models import Classroom, GenerationSettings, InstructorInvite, Lesson, normalize_code

# The generation settings both forms edit; the threshold is edited as a percentage.
SETTINGS = [name for name in GenerationSettings.FIELDS if name != "threshold"]


def model_choices():
    return [(spec.id, spec.name) for spec in registry.all_models()]


class SignUpForm(UserCreationForm):
    email = forms.EmailField(required=True, help_text="Used only to reset your password.")
    invite_code = forms.CharField(
        required=False, label="Instructor invite code (optional)", help_text="Teachers: the code an admin gave you."
    )

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")

    def clean_invite_code(self):
        code = normalize_code(self.cleaned_data.get("invite_code", ""))
        if not code:
            return None
        invite = InstructorInvite.objects.filter(code=code).first()
        if invite is None or not invite.usable:
            raise forms.ValidationError("This invite code is not valid (or has been used up).")
        return invite


class InviteRedeemForm(forms.Form):
    code = forms.CharField(label="Instructor invite code", max_length=40)

    def clean_code(self):
        code = normalize_code(self.cleaned_data["code"])
        invite = InstructorInvite.objects.filter(code=code).first()
        if invite is None or not invite.usable:
            raise forms.ValidationError("This invite code is not valid (or has been used up).")
        return invite


class JoinForm(forms.Form):
    code = forms.CharField(label="Join code", max_length=20, widget=forms.TextInput(attrs={"autocomplete": "off"}))

    def clean_code(self):
        code = normalize_code(self.cleaned_data["code"])
        classroom = Classroom.objects.filter(join_code=code).first()
        if classroom is None:
            raise forms.ValidationError("No class has this code. Check it with your teacher.")
        if classroom.archived:
            raise forms.ValidationError("This class is archived and takes no new students.")
        return classroom


class ModelMultipleField(forms.MultipleChoiceField):
    widget = forms.CheckboxSelectMultiple


class ClassroomCreateForm(forms.ModelForm):
    class Meta:
        model = Classroom
        fields = ["name", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}
        error_messages = {
            "name": {
                "required": "A class needs a name.",
                "max_length": "A class name can be at most %(limit_value)d characters (this one has %(show_value)d).",
            }
        }


class ClassroomSettingsForm(forms.ModelForm):
    allowed_models = ModelMultipleField(
        required=False, help_text="Leave every box empty to allow every model on the site."
    )
    default_model = forms.ChoiceField(required=False)
    threshold_percent = forms.FloatField(
        label="Threshold (%)", min_value=0, max_value=100, help_text="Tokens below it form the Other segment."
    )

    class Meta:
        model = Classroom
        fields = ["name", "description", "allowed_models", "default_model", *SETTINGS, "daily_token_quota"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    field_order = ["name", "description", "allowed_models", "default_model", "threshold_percent"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = model_choices()
        self.fields["allowed_models"].choices = choices
        self.fields["default_model"].choices = [("", "Site default")] + choices
        self.fields["threshold_percent"].initial = round(self.instance.threshold * 100, 4)
        self.fields["max_tokens"].widget.attrs["max"] = 500
        for name in SETTINGS:  # a class's own value: every setting has one
            if isinstance(self.fields[name], forms.NullBooleanField):
                self.fields[name] = forms.BooleanField(required=False, label=self.fields[name].label)
            else:
                self.fields[name].required = True

    def clean(self):
        data = super().clean()
        allowed = data.get("allowed_models") or []
        default = data.get("default_model")
        if allowed and default and default not in allowed:
            self.add_error("default_model", "The default model must be one of the allowed models.")
        return data

    def save(self, commit=True):
        self.instance.threshold = self.cleaned_data["threshold_percent"] / 100
        self.instance.allowed_models = list(self.cleaned_data.get("allowed_models") or [])
        return super().save(commit)


class TriStateField(forms.NullBooleanField):
    widget = forms.Select(choices=[("unknown", "Class setting"), ("true", "Yes"), ("false", "No")])


class LessonForm(forms.ModelForm):
    threshold_percent = forms.FloatField(
        label="Threshold (%)", required=False, min_value=0, max_value=100, help_text="Empty: the class's threshold."
    )
    model_name = forms.ChoiceField(required=False, label="Model")

    class Meta:
        model = Lesson
        fields = ["title", "prompt", "instructions", "order", "model_name", "predict_first", "seed", *SETTINGS]
        widgets = {"prompt": forms.Textarea(attrs={"rows": 3}), "instructions": forms.Textarea(attrs={"rows": 2})}

    field_order = ["title", "prompt", "instructions", "order", "model_name", "threshold_percent"]

    def __init__(self, *args, classroom=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.classroom = classroom or self.instance.classroom
        allowed = self.classroom.allowed_models or []
        choices = [c for c in model_choices() if not allowed or c[0] in allowed]
        self.fields["model_name"].choices = [("", "Class default")] + choices
        if self.instance.threshold is not None:
            self.fields["threshold_percent"].initial = round(self.instance.threshold * 100, 4)
        for name in SETTINGS:  # empty: the class's value
            if isinstance(self.fields[name], forms.NullBooleanField):
                self.fields[name] = TriStateField(required=False, label=self.fields[name].label)
            else:
                self.fields[name].help_text = f"Empty: the class's ({getattr(self.classroom, name)})."
        self.fields["prompt"].max_length = 2000

    def clean(self):
        data = super().clean()
        lo = data.get("temperature_min")
        hi = data.get("temperature_max")
        lo = self.classroom.temperature_min if lo is None else lo
        hi = self.classroom.temperature_max if hi is None else hi
        if lo > hi:
            self.add_error("temperature_max", "The highest temperature must be at least the lowest.")
        return data

    def save(self, commit=True):
        pct = self.cleaned_data.get("threshold_percent")
        self.instance.threshold = None if pct is None else pct / 100
        self.instance.classroom = self.classroom
        return super().save(commit)
